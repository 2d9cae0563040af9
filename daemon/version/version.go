// Package version says which slipway this is: the version, commit and build
// date set at build time (go build -ldflags "-X .../version.Version=v1.2.0"),
// or else what the Go toolchain recorded from the git checkout it built.
package version

import (
	"fmt"
	"runtime/debug"
)

// Set at build time with -ldflags -X; empty means "read the build info".
var (
	Version string
	Commit  string
	Date    string
)

// Info is the version, commit and build date, "" where unknown.
type Info struct{ Version, Commit, Date string }

// Get returns what is known of this build.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && info.Commit == "":
			info.Commit = s.Value
		case s.Key == "vcs.time" && info.Date == "":
			info.Date = s.Value
		case s.Key == "vcs.modified" && s.Value == "true" && info.Commit != "" && Commit == "":
			info.Commit += "-modified"
		}
	}
	return info
}

// String is the one line `slipway version` prints.
func (i Info) String() string {
	v, c, d := i.Version, i.Commit, i.Date
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("slipway %s (commit %s, built %s)", v, c, d)
}
