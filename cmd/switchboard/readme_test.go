package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/rpc"
)

// The README is the front door: its tables must match the code.

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableRow returns the README table row that starts with cell, or "".
func tableRow(doc, cell string) string {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| "+cell+" |") {
			return line
		}
	}
	return ""
}

func TestREADMEListsEveryServeFlag(t *testing.T) {
	doc := readme(t)
	var cfg serveConfig
	serveFlags(&cfg).VisitAll(func(f *flag.Flag) {
		row := tableRow(doc, "`--"+f.Name+"`")
		if row == "" {
			t.Errorf("README configuration table has no row for --%s", f.Name)
			return
		}
		if env := "`" + envName(f.Name) + "`"; !strings.Contains(row, env) {
			t.Errorf("README row for --%s does not name %s: %s", f.Name, env, row)
		}
		if f.DefValue != "" && !strings.Contains(row, "`"+f.DefValue+"`") {
			t.Errorf("README row for --%s does not give the default %q: %s", f.Name, f.DefValue, row)
		}
	})
}

func TestREADMEListsEveryErrorCode(t *testing.T) {
	doc := readme(t)
	for _, c := range rpc.Codes {
		if tableRow(doc, fmt.Sprint(c.Code)) == "" {
			t.Errorf("README error code table has no row for %d (%s)", c.Code, c.Message)
		}
	}
}

func TestREADMEListsEveryCloseCode(t *testing.T) {
	doc := readme(t)
	for _, c := range rpc.CloseCodes {
		if tableRow(doc, fmt.Sprint(int(c.Code))) == "" {
			t.Errorf("README close code table has no row for %d (%s)", c.Code, c.Meaning)
		}
	}
}
