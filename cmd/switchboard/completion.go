package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/client"
)

// completeCommand is the hidden command the completion scripts run to
// complete method names from the server the environment points at.
const completeCommand = "__complete"

// completionTimeout bounds how long a shell waits for method names.
const completionTimeout = 2 * time.Second

func completionCmd(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return usagef("usage: switchboard completion (bash | zsh | fish)")
	}
	var script string
	switch args[0] {
	case "bash":
		script = bashCompletion()
	case "zsh":
		script = zshCompletion()
	case "fish":
		script = fishCompletion()
	default:
		return usagef("completion: unknown shell %q: want bash, zsh or fish", args[0])
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// complete prints one completion per line for the scripts: the names of
// the methods of the server SWITCHBOARD_URL names (trusting
// SWITCHBOARD_CACERT, if set). It prints nothing on failure: completion
// must never get in a shell's way.
func complete(args []string, stdout io.Writer) int {
	if len(args) != 1 || args[0] != "methods" {
		return exitUsage
	}
	roots, err := caCertPool(os.Getenv("SWITCHBOARD_CACERT"))
	if err != nil {
		return exitUsage
	}
	c, err := client.New(os.Getenv("SWITCHBOARD_URL"), client.Options{Token: os.Getenv("SWITCHBOARD_TOKEN"), RootCAs: roots})
	if err != nil {
		return exitUsage
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	methods, err := c.Methods(ctx)
	if err != nil {
		return exitError
	}
	for _, m := range methods {
		fmt.Fprintln(stdout, m.Name)
	}
	return exitOK
}

// completionFlag is a flag as the scripts need it.
type completionFlag struct {
	name, usage string
	value       bool // takes a value: the next word is not an argument
}

func flagsOf(c command) []completionFlag {
	if c.flags == nil {
		return nil
	}
	var out []completionFlag
	c.flags().VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		out = append(out, completionFlag{name: f.Name, usage: f.Usage, value: !ok || !b.IsBoolFlag()})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, " ")
}

// argWords is what a command's arguments complete to in a shell: a word
// list, or a command substitution.
func argWords(c command, methods string) string {
	switch c.args {
	case "method":
		return methods
	case "shell":
		return "bash zsh fish"
	case "channel", "":
		return "" // channels cannot be listed without permissions; leave them to the user
	default:
		return c.args
	}
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString(`# bash completion for switchboard. Load it with:
#   source <(switchboard completion bash)
_switchboard() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]}
    COMPREPLY=()
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W "` + commandNames() + `" -- "$cur"))
        return
    fi
    local flags="" valued="" words=""
    case $cmd in
`)
	for _, c := range commands {
		var flags, valued []string
		for _, f := range flagsOf(c) {
			flags = append(flags, "--"+f.name)
			if f.value {
				valued = append(valued, "--"+f.name)
			}
		}
		fmt.Fprintf(&b, "    %s) flags=%q valued=%q words=%q ;;\n", c.name,
			strings.Join(flags, " "), strings.Join(valued, " "),
			argWords(c, `$(switchboard `+completeCommand+` methods 2>/dev/null)`))
	}
	b.WriteString(`    *) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    if [[ -n $prev && " $valued " == *" ${prev%%=*} "* && $prev != *=* ]]; then
        return # the flag's value
    fi
    # Only the first argument completes from the word list.
    local i n=0
    for (( i = 2; i < COMP_CWORD; i++ )); do
        local w=${COMP_WORDS[i]}
        if [[ $w == -* ]]; then
            [[ " $valued " == *" $w "* ]] && (( i++ ))
            continue
        fi
        (( n++ ))
    done
    if (( n == 0 )); then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}
complete -o default -F _switchboard switchboard
`)
	return b.String()
}

func zshCompletion() string {
	var b strings.Builder
	b.WriteString(`#compdef switchboard
# zsh completion for switchboard. Load it with:
#   source <(switchboard completion zsh)
# (after compinit), or save it as _switchboard in a directory of $fpath.
_switchboard() {
    local -a cmds flags args
    if (( CURRENT == 2 )); then
        cmds=(
`)
	for _, c := range commands {
		fmt.Fprintf(&b, "            %s\n", zshQuote(c.name+":"+c.summary))
	}
	b.WriteString(`        )
        _describe 'command' cmds
        return
    fi
    case $words[2] in
`)
	for _, c := range commands {
		var flags []string
		for _, f := range flagsOf(c) {
			flags = append(flags, zshQuote("--"+f.name+":"+f.usage))
		}
		fmt.Fprintf(&b, "    %s)\n        flags=(%s)\n", c.name, strings.Join(flags, " "))
		switch w := argWords(c, ""); {
		case c.args == "method":
			fmt.Fprintf(&b, "        args=(${(f)\"$(switchboard %s methods 2>/dev/null)\"})\n", completeCommand)
		case w != "":
			fmt.Fprintf(&b, "        args=(%s)\n", w)
		}
		b.WriteString("        ;;\n")
	}
	b.WriteString(`    *) return ;;
    esac
    if [[ $PREFIX == -* ]]; then
        _describe 'flag' flags
    elif (( CURRENT == 3 && ${#args} > 0 )); then
        compadd -a args
    else
        _files
    fi
}
if [[ $funcstack[1] == _switchboard ]]; then
    _switchboard "$@"
else
    compdef _switchboard switchboard
fi
`)
	return b.String()
}

// zshQuote quotes s for a zsh array, escaping the colons _describe
// would split on after the first.
func zshQuote(s string) string {
	name, desc, _ := strings.Cut(s, ":")
	desc = strings.ReplaceAll(desc, ":", `\:`)
	return "'" + strings.ReplaceAll(name+":"+desc, "'", `'\''`) + "'"
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString(`# fish completion for switchboard. Load it with:
#   switchboard completion fish | source
# or save it as ~/.config/fish/completions/switchboard.fish.
complete -c switchboard -e
`)
	for _, c := range commands {
		fmt.Fprintf(&b, "complete -c switchboard -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range commands {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		for _, f := range flagsOf(c) {
			r := ""
			if f.value {
				r = " -r"
			}
			fmt.Fprintf(&b, "complete -c switchboard -n %s -l %s%s -d %s\n", cond, f.name, r, fishQuote(f.usage))
		}
		switch w := argWords(c, ""); {
		case c.args == "method":
			fmt.Fprintf(&b, "complete -c switchboard -f -n %s -a '(switchboard %s methods 2>/dev/null)'\n", cond, completeCommand)
		case w != "":
			fmt.Fprintf(&b, "complete -c switchboard -f -n %s -a %s\n", cond, fishQuote(w))
		}
	}
	return b.String()
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
