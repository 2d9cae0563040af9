package setup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystemd is a host where systemd is PID 1 (or not), with its units in
// a temporary directory and systemctl's calls recorded instead of run.
func fakeSystemd(t *testing.T, booted bool, calls *[]string) Systemd {
	return Systemd{
		Dir:    t.TempDir(),
		Binary: "/usr/local/bin/slipway",
		Booted: func() bool { return booted },
		Systemctl: func(_ context.Context, args ...string) error {
			*calls = append(*calls, strings.Join(args, " "))
			return nil
		},
	}
}

func ensureUnits(t *testing.T, sd Systemd) string {
	t.Helper()
	opts := Options{Systemd: sd}
	opts.defaults()
	var out bytes.Buffer
	h := host{opts: opts, out: &out, log: opts.Logger}
	if err := h.ensureUnits(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestUnitsUnderSystemd(t *testing.T) {
	var calls []string
	sd := fakeSystemd(t, true, &calls)
	out := ensureUnits(t, sd)
	if !strings.HasPrefix(out, "systemd units: wrote ") || !strings.HasSuffix(out, "systemctl enable --now slipway-proxy slipway\n") {
		t.Errorf("said %q", out)
	}
	if len(calls) != 1 || calls[0] != "daemon-reload" {
		t.Errorf("systemctl calls %q, want one daemon-reload", calls)
	}
	want := map[string][]string{
		"slipway-proxy.service": {"Type=notify\n", "NotifyAccess=all\n", "ExecStart=/usr/local/bin/slipway proxy\n",
			"ExecReload=/usr/local/bin/slipway proxy upgrade\n", "Restart=always\n", "RestartSec=100ms\n"},
		"slipway.service": {"ExecStart=/usr/local/bin/slipway serve --start-proxy=false\n", "Restart=always\n",
			"Wants=slipway-proxy.service incus.socket\n"},
	}
	for name, lines := range want {
		text := readFile(filepath.Join(sd.Dir, name))
		for _, line := range lines {
			if !strings.Contains(text, "\n"+line) {
				t.Errorf("%s has no line %q:\n%s", name, line, text)
			}
		}
		if !strings.Contains(text, "\nEnvironment=SLIPWAY_DATA="+DefaultDataDir+"\nEnvironmentFile=-/etc/default/slipway\n") {
			t.Errorf("%s does not set SLIPWAY_DATA before reading /etc/default/slipway:\n%s", name, text)
		}
	}
}

func TestUnitsAgainAreUpToDate(t *testing.T) {
	var calls []string
	sd := fakeSystemd(t, true, &calls)
	ensureUnits(t, sd)
	if out := ensureUnits(t, sd); !strings.HasPrefix(out, "systemd units: already up to date (") {
		t.Errorf("second run said %q", out)
	}
	if len(calls) != 1 {
		t.Errorf("systemctl calls %q, want only the first run's daemon-reload", calls)
	}
}

// A new binary path (slipway installed elsewhere) rewrites the units.
func TestUnitsForAnotherBinaryAreRewritten(t *testing.T) {
	var calls []string
	sd := fakeSystemd(t, true, &calls)
	ensureUnits(t, sd)
	sd.Binary = "/opt/slipway/bin/slipway"
	if out := ensureUnits(t, sd); !strings.HasPrefix(out, "systemd units: wrote ") {
		t.Errorf("said %q", out)
	}
	if len(calls) != 2 {
		t.Errorf("systemctl calls %q, want a daemon-reload per run", calls)
	}
	if text := readFile(filepath.Join(sd.Dir, daemonUnit)); !strings.Contains(text, "\nExecStart=/opt/slipway/bin/slipway serve ") {
		t.Errorf("%s:\n%s", daemonUnit, text)
	}
}

func TestUnitsWithoutSystemd(t *testing.T) {
	var calls []string
	sd := fakeSystemd(t, false, &calls)
	out := ensureUnits(t, sd)
	if !strings.HasPrefix(out, "systemd units: none installed (systemd is not PID 1)") || !strings.Contains(out, "`slipway serve`") {
		t.Errorf("said %q", out)
	}
	if entries, _ := os.ReadDir(sd.Dir); len(entries) != 0 || len(calls) != 0 {
		t.Errorf("changed something: files %v, systemctl calls %q", entries, calls)
	}
}

// By default the units run this binary, by its real path.
func TestUnitBinaryIsThisOne(t *testing.T) {
	got, err := unitBinary("")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if want, _ := filepath.EvalSymlinks(exe); got != want || !filepath.IsAbs(got) {
		t.Errorf("binary %q, want %q", got, want)
	}
}

func TestUnitsRefuseAPathThatNeedsQuoting(t *testing.T) {
	for _, bin := range []string{"/opt/my apps/slipway", "/opt/100%/slipway", "/opt/$HOME/slipway", "bin/slipway"} {
		if _, err := renderUnits(bin, DefaultDataDir); err == nil {
			t.Errorf("%q: rendered", bin)
		}
	}
}
