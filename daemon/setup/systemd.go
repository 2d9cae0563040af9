package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Step 5: systemd units, where systemd runs the host. The proxy and the
// daemon are two units, so that each restarts on its own and a reload of
// the proxy is its zero-downtime upgrade.

// Systemd configures the units step. Zero values mean the host's own.
type Systemd struct {
	Dir       string                                          // where the units go (default /etc/systemd/system)
	Binary    string                                          // the slipway they run (default this one, symlinks resolved)
	Booted    func() bool                                     // whether systemd is PID 1
	Systemctl func(ctx context.Context, args ...string) error // runs systemctl
}

func (s *Systemd) defaults() {
	if s.Dir == "" {
		s.Dir = "/etc/systemd/system"
	}
	if s.Booted == nil {
		s.Booted = systemdBooted
	}
	if s.Systemctl == nil {
		s.Systemctl = systemctl
	}
}

// systemdBooted is sd_booted(3)'s test: systemd makes this directory early
// at boot, and nothing else does.
func systemdBooted() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func systemctl(ctx context.Context, args ...string) error {
	if b, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl %s: %w\n%s", strings.Join(args, " "), err, tail(b, 10))
	}
	return nil
}

func (h *host) ensureUnits(ctx context.Context) error {
	sd := h.opts.Systemd
	if !sd.Booted() {
		h.say("systemd units: none installed (systemd is not PID 1); `slipway serve` (or `just up`) runs slipway")
		return nil
	}
	bin, err := unitBinary(sd.Binary)
	if err != nil {
		return err
	}
	units, err := renderUnits(bin, h.opts.DataDir)
	if err != nil {
		return err
	}
	changed, err := writeUnits(sd.Dir, units)
	switch {
	case errors.Is(err, fs.ErrPermission):
		h.say("systemd units: none installed (only root can write %s): run `slipway setup` as root", sd.Dir)
		return nil
	case err != nil:
		return fmt.Errorf("systemd units: %w", err)
	case len(changed) == 0:
		h.say("systemd units: already up to date (%s)", unitList(sd.Dir))
		return nil
	}
	if err := sd.Systemctl(ctx, "daemon-reload"); err != nil {
		return err
	}
	h.say("systemd units: wrote %s; run them now and at boot: systemctl enable --now slipway-proxy slipway", strings.Join(changed, ", "))
	return nil
}

// unitBinary returns the binary the units run: this one unless told, by
// its real path, the one the proxy's upgrade starts again (it reads
// /proc/self/exe), so that replacing that file is the upgrade.
func unitBinary(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	exe, err := os.Executable()
	if err == nil {
		bin, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return "", fmt.Errorf("systemd units: find slipway's binary: %w", err)
	}
	return bin, nil
}

// plainPath: an absolute path a unit file can hold as it is. Spaces, '%'
// (specifiers) and '$' (variables) would need quoting, each its own way in
// ExecStart= and Environment=; refusing them is simpler than getting one
// wrong.
func plainPath(p string) bool {
	if !filepath.IsAbs(p) {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+-@~", r)) {
			return false
		}
	}
	return true
}

// writeUnits writes the units that differ from what is in dir, each by a
// rename so systemd never reads half a file, and returns their paths.
func writeUnits(dir string, units []unit) ([]string, error) {
	var changed []string
	for _, u := range units {
		path := filepath.Join(dir, u.name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(u.text)) {
			continue
		}
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(u.text), 0o644); err != nil {
			return changed, err
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return changed, err
		}
		changed = append(changed, path)
	}
	return changed, nil
}

func unitList(dir string) string {
	return filepath.Join(dir, proxyUnit) + ", " + filepath.Join(dir, daemonUnit)
}

const (
	proxyUnit  = "slipway-proxy.service"
	daemonUnit = "slipway.service"
)

type unit struct{ name, text string }

// renderUnits returns the two units for the binary bin and the data
// directory data (which /etc/default/slipway may still override).
func renderUnits(bin, data string) ([]unit, error) {
	for _, p := range []string{bin, data} {
		if !plainPath(p) {
			return nil, fmt.Errorf("systemd units: %q would need quoting in a unit; use a plain absolute path (/usr/local/bin/slipway, /var/lib/slipway)", p)
		}
	}
	return []unit{
		{proxyUnit, fmt.Sprintf(proxyUnitText, bin, data)},
		{daemonUnit, fmt.Sprintf(daemonUnitText, bin, data)},
	}, nil
}

const unitHeader = `# Written by ` + "`slipway setup`" + `, which rewrites it: put settings (SLIPWAY_*
# variables) in /etc/default/slipway, or changes in a drop-in (systemctl edit).
`

// Incus's Debian package starts incusd through incus.socket: wanting the
// socket is enough for the first connection to start it.
const proxyUnitText = unitHeader + `[Unit]
Description=slipway front proxy
After=network.target incus.socket incus.service
Wants=incus.socket
# A proxy that gave up would serve no one: keep restarting it.
StartLimitIntervalSec=0

[Service]
Type=notify
# After an upgrade the new process, not the one systemd started, says
# READY=1 and MAINPID=.
NotifyAccess=all
Environment=SLIPWAY_DATA=%[2]s
EnvironmentFile=-/etc/default/slipway
ExecStart=%[1]s proxy
# A reload is an upgrade: a new process of the binary now installed takes
# over the listening sockets themselves, so no connection is refused, and
# the old process finishes the requests it has, then exits.
ExecReload=%[1]s proxy upgrade
# The default, on purpose. An upgrade kills nothing: systemd follows the new
# main process, and the old one's exit is not the main process's. A stop
# signals every process of the unit, an old one still finishing requests
# too; "mixed" would SIGKILL that one mid-request, "process" would leave it
# running past the stop.
KillMode=control-group
Restart=always
# No one accepts connections until the proxy is back: keep the gap after a
# crash well under a second.
RestartSec=100ms

[Install]
WantedBy=multi-user.target
`

const daemonUnitText = unitHeader + `[Unit]
Description=slipway deployment daemon
# The proxy is its own unit: the daemon waits for it but does not own it, so
# restarting slipway drops no request, and Wants (not Requires) keeps the
# daemon up while the proxy restarts.
Wants=slipway-proxy.service incus.socket
After=network.target incus.socket incus.service slipway-proxy.service
StartLimitIntervalSec=0

[Service]
Type=exec
Environment=SLIPWAY_DATA=%[2]s
EnvironmentFile=-/etc/default/slipway
ExecStart=%[1]s serve --start-proxy=false
# A stop ends what the daemon started (git, hooks) and never the proxy: with
# --start-proxy=false it starts none, and the proxy's processes are in
# slipway-proxy.service.
KillMode=control-group
Restart=always
RestartSec=1s

[Install]
WantedBy=multi-user.target
`
