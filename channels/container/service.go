package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Paths shared with the base image (channels/container/baseimage): the app's web
// process script, its pid file, and the image's runner.
const (
	WebScript = "/etc/slipway/web"
	WebPID    = "/run/slipway/web.pid"
	runner    = "/etc/slipway/run"
	startFIFO = "/run/slipway/start"
)

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// startScript runs in the instance with the new web script on stdin. With
// the base image's runner (a ::respawn: entry from boot that waits for
// /etc/slipway/web) it writes the script and wakes the runner through its
// FIFO: the app starts within milliseconds. Images with busybox init but no
// runner get a ::respawn: line and a SIGHUP, which busybox init honours after
// a one-second sleep. If the app is already running (a second StartService)
// its process group is stopped and init starts the new script in its place.
const startScript = `set -e
umask 022
mkdir -p /etc/slipway /run/slipway
` + writeWebScript + `
chmod 755 ` + WebScript + `.new
mv -f ` + WebScript + `.new ` + WebScript + `
pid=$(cat ` + WebPID + ` 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
	kill -TERM -"$pid" 2>/dev/null || kill -TERM "$pid"
elif [ -x ` + runner + ` ] && grep -q '^[^#]*:respawn:` + runner + `$' /etc/inittab; then
	[ -p ` + startFIFO + ` ] || mkfifo -m 600 ` + startFIFO + ` 2>/dev/null || true
	if [ -p ` + startFIFO + ` ]; then
		exec 3<>` + startFIFO + `
		echo start >&3
		exec 3<&-
	fi
else
	grep -q '^[^#]*:respawn:` + WebScript + `$' /etc/inittab || echo '::respawn:` + WebScript + `' >> /etc/inittab
	kill -HUP 1
fi
`

// writeWebScript puts the web script in place from stdin or, when stdin
// carries the app's tree, from $SLIPWAY_WEB_SCRIPT.
const writeWebScript = `if [ -n "${SLIPWAY_TREE:-}" ]; then
	tar -x -f - -C /app || { echo "unpacking the commit into /app failed" >&2; exit 1; }
	printf '%s' "$SLIPWAY_WEB_SCRIPT" > ` + WebScript + `.new
else
	cat > ` + WebScript + `.new
fi`

// StartService runs command (with sh -c) in /app with env under the image's
// supervisor, busybox init, which restarts it when it exits. The process's
// output goes to the instance console (`incus console --show-log NAME`).
// StartService returns once the supervisor has been told; whether the app
// comes up is for the caller's health check (Dial) to find out. A non-nil
// tree is a tar of the app, unpacked into /app first.
func (c *Incus) StartService(ctx context.Context, name, command string, env map[string]string, tree io.Reader) error {
	script, err := webScript(command, env)
	if err != nil {
		return fmt.Errorf("start service in %s: %w", name, err)
	}
	// With a tree, a fresh instance of the base image takes the app through
	// its receiver, without an exec (see deliver.go); otherwise one exec
	// unpacks it and starts the app. Each exec costs Incus a process start
	// and four websockets, a tenth of a second here.
	if tree != nil {
		err := c.deliver(ctx, name, tree, script)
		if !errors.Is(err, errNoReceiver) {
			return err
		}
	}
	stdin, execEnv := io.Reader(strings.NewReader(script)), map[string]string(nil)
	switch {
	case tree != nil && len(script) <= maxEnvScript:
		stdin, execEnv = tree, map[string]string{"SLIPWAY_TREE": "1", "SLIPWAY_WEB_SCRIPT": script}
	case tree != nil:
		if err := c.unpack(ctx, name, tree); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	code, err := c.Exec(ctx, name, []string{"/bin/sh", "-c", startScript}, execEnv, stdin, &out)
	if err != nil {
		return fmt.Errorf("start service in %s: %w", name, err)
	}
	if code != 0 {
		return fmt.Errorf("start service in %s: exit %d: %s", name, code, strings.TrimSpace(out.String()))
	}
	return nil
}

// maxEnvScript keeps the web script well under Linux's limit on one
// environment string (128 KiB); a larger one (huge config) takes two execs.
const maxEnvScript = 64 << 10

// unpack extracts a tar of the app into /app.
func (c *Incus) unpack(ctx context.Context, name string, tree io.Reader) error {
	var out bytes.Buffer
	code, err := c.Exec(ctx, name, []string{"tar", "-x", "-f", "-", "-C", "/app"}, nil, tree, &out)
	if err != nil {
		return fmt.Errorf("unpack the commit in %s: %w", name, err)
	}
	if code != 0 {
		return fmt.Errorf("unpack the commit in %s: tar exited with status %d: %s", name, code, strings.TrimSpace(out.String()))
	}
	return nil
}

// webScript is /etc/slipway/web: the app's environment, the pid file (so a
// restart or a test can find the process), then the command. It runs as a
// child of busybox init, which starts it in its own session, so the pid is
// also the process group of everything the command starts.
func webScript(command string, env map[string]string) (string, error) {
	if strings.TrimSpace(command) == "" {
		return "", fmt.Errorf("%w: empty web command", ErrBadName)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		if !envNameRe.MatchString(k) {
			return "", fmt.Errorf("%w: environment variable name %q", ErrBadName, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by slipway: the app's web process, run by busybox init.\n")
	b.WriteString("cd /app || exit 1\n")
	b.WriteString("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	b.WriteString("echo $$ > " + WebPID + "\n")
	if simpleCommand(command) {
		// This shell can exec it itself: one process start fewer, which
		// costs 15 ms on a small VM, on every start of the app.
		fmt.Fprintf(&b, "exec %s\n", strings.TrimSpace(command))
	} else {
		fmt.Fprintf(&b, "exec /bin/sh -c %s\n", shellQuote(command))
	}
	return b.String(), nil
}

// simpleCommand: command is one simple command (words, quotes, $VARIABLES),
// which means the same after "exec " as under "sh -c": no operators, no
// redirections, no subshells or substitutions, no leading assignment or
// reserved word.
func simpleCommand(command string) bool {
	command = strings.TrimSpace(command)
	if command == "" || strings.ContainsAny(command, ";&|<>()`{}!\n\\#") {
		return false
	}
	first, _, _ := strings.Cut(command, " ")
	if strings.Contains(first, "=") || strings.ContainsAny(first, "'\"$") {
		return false
	}
	switch first {
	case "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in", "exec", "time":
		return false
	}
	return true
}

// shellQuote quotes s for a POSIX shell: single quotes, with each ' written
// as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
