// Package templates holds the text/template files that codegen renders into
// a new framework project. They are embedded in the binary, so an installed
// codegen needs no checkout of the toolkit to find them.
//
// Each file of the project has one template, named after the file it
// becomes with ".tmpl" appended (gitignore.tmpl becomes .gitignore: go:embed
// leaves out names starting with a dot). Package codegen decides which
// templates it renders, the data they see and where the results go.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed project/*.tmpl
var project embed.FS

// FS returns the project templates, at the root of the returned file system.
func FS() fs.FS {
	sub, err := fs.Sub(project, "project")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "project" is valid.
		panic(err)
	}
	return sub
}
