// Package detect works out how to build and run an app whose repository says
// little about it, as Heroku's buildpacks and Piku do: the Procfile's process
// types, and a language found from the files at the root (requirements.txt,
// package.json, go.mod, Gemfile, a static site). It reads files only through
// Files, so it knows nothing of git or of instances.
package detect

import "fmt"

// Files is the part of a commit's tree detection reads.
type Files interface {
	// ReadFile returns a file's content, or an error when there is none.
	ReadFile(path string) ([]byte, error)
	// Exists reports whether path names a file or a directory.
	Exists(path string) bool
}

// Step is one build command: a name for the log and a shell command run with
// /bin/sh in /app.
type Step struct {
	Name    string
	Command string
}

// Plan is what detection found: how to build the app and what it runs by
// default.
type Plan struct {
	Language  string    // "Python"
	Reason    string    // the file that told: "requirements.txt"
	Build     []Step    // in order; may be empty (nothing to install)
	Processes []Process // defaults, used for names the Procfile or manifest do not give
	// Env is added to the environment of the build steps and of every
	// process (PATH with the app's tools first, VIRTUAL_ENV, ...).
	Env map[string]string
	// BuildEnv is added during the build only (GOTOOLCHAIN, GOPROXY, ...).
	BuildEnv map[string]string
	// Toolchain says the language's own tools are needed (python3, node,
	// go, ruby), which slipway/busybox lacks; a static site needs none.
	Toolchain bool
}

// Detected names what was found, for the log: "Python app detected (requirements.txt)".
func (p Plan) Detected() string {
	return fmt.Sprintf("%s app detected (%s)", p.Language, p.Reason)
}

// Web returns the default web command, or "".
func (p Plan) Web() string {
	for _, proc := range p.Processes {
		if proc.Name == "web" {
			return proc.Command
		}
	}
	return ""
}

// detectors in the order they are tried: one language per app. Node comes
// after Python, Ruby and Go because a package.json beside their files is
// usually front-end tooling of an app written in them; a static site is the
// fallback.
var detectors = []func(Files) (Plan, bool){python, ruby, golang, node, static}

// Detect finds the app's language from the files at the root of its tree.
func Detect(files Files) (Plan, bool) {
	for _, d := range detectors {
		if p, ok := d(files); ok {
			return p, true
		}
	}
	return Plan{}, false
}

// Markers lists, for error messages, the files Detect looks for.
const Markers = "requirements.txt, pyproject.toml, package.json, go.mod, Gemfile, index.html or public/"

// cacheDir is the build cache in build commands. The engine sets
// $SLIPWAY_CACHE to a directory kept across an installation's deploys; the
// fallback keeps a build that runs without one (a test, a one-off) working.
// Not under /tmp: on a systemd image, systemd-tmpfiles empties /tmp while
// the instance boots, which is when the build starts (a Go build then
// fails at random: its module index in GOCACHE vanishes mid-build).
const cacheDir = `${SLIPWAY_CACHE:-/var/tmp/slipway-cache}`

// basePath is the PATH of Debian and of slipway/busybox; a language's tools
// go in front of it. Env values are not expanded, so it is spelt out.
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
