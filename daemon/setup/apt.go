package setup

import (
	"os"
	"path/filepath"
	"strings"
)

// Debian 12 (bookworm) has no Incus in main; bookworm-backports has 6.0.
// Later releases have it in main.
const backportsFor = "bookworm"

// aptPlan is how to install Incus on this host with apt.
type aptPlan struct {
	suite       string // target release for apt-get -t, "" for the default
	sourcesFile string // apt source file to write first, "" when none is needed
	sourcesLine string
}

// installPlan works out the apt steps from /etc/os-release's fields and the
// apt configuration under aptDir (/etc/apt).
func installPlan(osRelease map[string]string, aptDir string) aptPlan {
	codename := osRelease["VERSION_CODENAME"]
	if codename != backportsFor {
		return aptPlan{}
	}
	suite := codename + "-backports"
	p := aptPlan{suite: suite}
	sources := readSources(aptDir)
	if hasSuite(sources, suite) {
		return p
	}
	p.sourcesFile = filepath.Join(aptDir, "sources.list.d", suite+".list")
	p.sourcesLine = "# Added by slipway setup: Incus for Debian 12 comes from " + suite + ".\n" +
		"deb " + mirror(sources, codename) + " " + suite + " main\n"
	return p
}

func (p aptPlan) install() []string {
	args := []string{"apt-get", "install", "-y"}
	if p.suite != "" {
		args = append(args, "-t", p.suite)
	}
	args = append(args, "--no-install-recommends")
	return append(args, Packages...)
}

func (p aptPlan) commands() [][]string {
	return [][]string{{"apt-get", "update"}, p.install()}
}

// script is the same steps as shell commands, for a person to run as root.
func (p aptPlan) script() string {
	var b strings.Builder
	if p.sourcesFile != "" {
		for _, line := range strings.Split(strings.TrimSpace(p.sourcesLine), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString("  echo '" + line + "' > " + p.sourcesFile + "\n")
			}
		}
	}
	b.WriteString("  apt-get update\n")
	b.WriteString("  DEBIAN_FRONTEND=noninteractive " + strings.Join(p.install(), " ") + "\n")
	return b.String()
}

// source is one apt source entry, from either format.
type source struct {
	uris, suites []string
}

// readSources reads sources.list and sources.list.d/*.list (one-line
// format) and sources.list.d/*.sources (deb822), skipping comments and
// disabled entries. Files with other endings are ignored, as apt does.
func readSources(aptDir string) []source {
	var out []source
	files := []string{filepath.Join(aptDir, "sources.list")}
	lists, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	files = append(files, lists...)
	for _, f := range files {
		for _, line := range strings.Split(readFile(f), "\n") {
			if s, ok := parseOneLine(line); ok {
				out = append(out, s)
			}
		}
	}
	deb822, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	for _, f := range deb822 {
		out = append(out, parseDeb822(readFile(f))...)
	}
	return out
}

// parseOneLine parses "deb [options] URI SUITE COMPONENT...".
func parseOneLine(line string) (source, bool) {
	line, _, _ = strings.Cut(line, "#")
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "deb" {
		return source{}, false
	}
	f = f[1:]
	if strings.HasPrefix(f[0], "[") {
		for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
			f = f[1:]
		}
		if len(f) == 0 {
			return source{}, false
		}
		f = f[1:]
	}
	if len(f) < 2 {
		return source{}, false
	}
	return source{uris: f[:1], suites: f[1:2]}, true
}

// parseDeb822 parses the stanzas of a .sources file.
func parseDeb822(text string) []source {
	var out []source
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok && !strings.HasPrefix(k, " ") && !strings.HasPrefix(k, "\t") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		out = append(out, source{uris: strings.Fields(fields["uris"]), suites: strings.Fields(fields["suites"])})
	}
	return out
}

func hasSuite(sources []source, suite string) bool {
	for _, s := range sources {
		for _, x := range s.suites {
			if x == suite {
				return true
			}
		}
	}
	return false
}

// mirror is the archive the host already uses for its release, so backports
// come from the same (perhaps local) mirror; Debian's CDN otherwise.
func mirror(sources []source, codename string) string {
	for _, s := range sources {
		for _, x := range s.suites {
			if x == codename && len(s.uris) > 0 {
				return strings.TrimSuffix(s.uris[0], "/")
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// readOSRelease parses /etc/os-release (KEY=value, values maybe quoted).
func readOSRelease(path string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}
