package baseimage

import (
	"os"
	"path/filepath"
	"strings"
)

// DefaultMirror is Debian's CDN, used when the host names no mirror of its own.
const DefaultMirror = "http://deb.debian.org/debian"

// AptSource is one enabled `deb` entry of the host's apt configuration, in
// either format.
type AptSource struct {
	URIs, Suites, Components []string
}

// ReadAptSources reads aptDir's (/etc/apt's) sources.list and
// sources.list.d/*.list (one-line format) and sources.list.d/*.sources
// (deb822), skipping comments, deb-src and disabled entries. Files with other
// endings are ignored, as apt does (a "*.list.disabled" is off).
func ReadAptSources(aptDir string) []AptSource {
	var out []AptSource
	files := []string{filepath.Join(aptDir, "sources.list")}
	lists, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	for _, f := range append(files, lists...) {
		for _, line := range strings.Split(readText(f), "\n") {
			if s, ok := parseOneLine(line); ok {
				out = append(out, s)
			}
		}
	}
	deb822, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	for _, f := range deb822 {
		out = append(out, parseDeb822(readText(f))...)
	}
	return out
}

// HostMirror is the first URI of the host's apt sources that serves suite's
// main component, so the image comes from the same (perhaps local, perhaps
// the only reachable) mirror the host installs from; Debian's CDN otherwise.
func HostMirror(sources []AptSource, suite string) string {
	for _, s := range sources {
		if len(s.URIs) > 0 && has(s.Suites, suite) && (len(s.Components) == 0 || has(s.Components, "main")) {
			return strings.TrimSuffix(s.URIs[0], "/")
		}
	}
	return DefaultMirror
}

// parseOneLine parses "deb [options] URI SUITE COMPONENT...".
func parseOneLine(line string) (AptSource, bool) {
	line, _, _ = strings.Cut(line, "#")
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "deb" {
		return AptSource{}, false
	}
	f = f[1:]
	if strings.HasPrefix(f[0], "[") {
		for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
			f = f[1:]
		}
		if len(f) == 0 {
			return AptSource{}, false
		}
		f = f[1:]
	}
	if len(f) < 2 {
		return AptSource{}, false
	}
	return AptSource{URIs: f[:1], Suites: f[1:2], Components: f[2:]}, true
}

// parseDeb822 parses the stanzas of a .sources file: blank lines (perhaps
// holding spaces) end a stanza, field names are case insensitive, and
// continuation lines (leading blank) are not needed for the fields read here.
func parseDeb822(text string) []AptSource {
	var out []AptSource
	fields := map[string]string{}
	flush := func() {
		if has(strings.Fields(fields["types"]), "deb") && !strings.EqualFold(fields["enabled"], "no") {
			out = append(out, AptSource{
				URIs:       strings.Fields(fields["uris"]),
				Suites:     strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"]),
			})
		}
		fields = map[string]string{}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch k, v, ok := strings.Cut(line, ":"); {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"), line[0] == ' ', line[0] == '\t', !ok:
		default:
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readText(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
