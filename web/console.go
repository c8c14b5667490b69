package web

import (
	"embed"
	"io/fs"
	"path"
)

// The console's own files: what the build may serve, and nothing else in
// the directory (its type-checking config, the README's screenshot).
//
//go:embed console/*.html console/*.js console/*.css
var consoleFiles embed.FS

// Console holds the web console's files by name: index.html, served at
// the root, and what it loads, served under /console/.
var Console = loadConsole()

func loadConsole() map[string]*File {
	files := map[string]*File{}
	names, err := fs.Glob(consoleFiles, "console/*")
	if err != nil {
		panic("web: list the console's files: " + err.Error())
	}
	for _, name := range names {
		files[path.Base(name)] = mustLoad(consoleFiles, name, false)
	}
	return files
}
