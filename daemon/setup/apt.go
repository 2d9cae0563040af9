package setup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
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
	sources := baseimage.ReadAptSources(aptDir)
	if hasSuite(sources, suite) {
		return p
	}
	p.sourcesFile = filepath.Join(aptDir, "sources.list.d", suite+".list")
	p.sourcesLine = "# Added by slipway setup: Incus for Debian 12 comes from " + suite + ".\n" +
		"deb " + baseimage.HostMirror(sources, codename) + " " + suite + " main\n"
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

func hasSuite(sources []baseimage.AptSource, suite string) bool {
	for _, s := range sources {
		for _, x := range s.Suites {
			if x == suite {
				return true
			}
		}
	}
	return false
}

// aptInstall installs Debian packages (as root). A host whose package lists
// are missing or stale (a fresh cloud image) gets one apt-get update and a
// second try.
func aptInstall(ctx context.Context, pkgs ...string) error {
	install := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
	b, err := aptGet(ctx, install...)
	if err != nil {
		if _, uerr := aptGet(ctx, "update"); uerr == nil {
			b, err = aptGet(ctx, install...)
		}
	}
	if err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(pkgs, " "), err, tail(b, 20))
	}
	return nil
}

func aptGet(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.CombinedOutput()
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
