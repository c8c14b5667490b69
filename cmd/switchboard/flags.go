package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// parseFlags parses args into fs, then fills every flag not given on the
// command line from SWITCHBOARD_<NAME> in the environment (dashes become
// underscores). The command line wins over the environment.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return fromEnv(fs, func(string) bool { return true })
}

// parseArgs parses args into fs, allowing flags before, between and after
// the positional arguments (up to a "--"), which it returns. Only the
// flags for which fromEnvironment is true are filled from the environment.
func parseArgs(fs *flag.FlagSet, args []string, fromEnvironment func(flagName string) bool) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return positional, fromEnv(fs, fromEnvironment)
}

func flagError(err error) error {
	if err == flag.ErrHelp {
		return err
	}
	return usageError{err}
}

// fromEnv fills the flags not given on the command line for which ok is
// true from the environment.
func fromEnv(fs *flag.FlagSet, ok func(flagName string) bool) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil || !ok(f.Name) {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usagef("%s=%q: %v", name, v, serr)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a flag that may be repeated, and that also takes
// comma-separated values: --publish a --publish b, or --publish a,b.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// withEnvHelp appends each flag's environment variable to its usage text.
func withEnvHelp(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, envName(f.Name))
	})
}
