package daemon_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommandsExplainThemselves: usage errors in slipway's words then the
// usage, help for two-word commands, --json an array on every reading
// command, and a reason for every failure people see.
func TestCommandsExplainThemselves(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.deployed("cli", "hi\n")

	for _, tc := range []struct {
		args []string
		want string // the whole of stderr's first two lines
	}{
		{[]string{"users", "--jsn"}, "slipway: unknown flag --jsn\nusage: users [--json]"},
		{[]string{"status", "--jsn"}, "slipway: unknown flag --jsn\nusage: status [APP/ENV] [--json]"},
		{[]string{"history", "cli/production", "--limit", "x"}, "slipway: --limit \"x\": not a number\nusage: history APP/ENV [--limit N] [--json]"},
		{[]string{"history", "cli/production", "--limit", "0"}, "slipway: --limit 0: give a number of commits, 1 or more\nusage: history "},
		{[]string{"status", "cli"}, "slipway: \"cli\": write the installation as APP/ENV\nusage: status "},
		{[]string{"restart", "cli/production", "--force"}, "slipway: unknown flag --force\nusage: restart APP/ENV"},
		{[]string{"logs", "cli/production", "--app", "-n"}, "slipway: -n needs a value\nusage: logs OP|APP/ENV [-f] [--json] | logs APP/ENV --app [-f] [-n N] [--since 1h]"},
		{[]string{"ops", "--type", "nope"}, "slipway: --type \"nope\": give one of deploy, switch, restart, configure, maintenance, execute, deprovision, backup, restore, purge, report, logs, rebuild, domain, renew, provision, reload, copy, scale, heal\nusage: ops "},
		{[]string{"grant", "admin", "production", "boss"}, "slipway: "},
	} {
		_, errOut, code := d.ssh(tc.args...)
		lines := strings.SplitN(errOut, "\n", 3)
		got := strings.Join(lines[:min(2, len(lines))], "\n")
		if code == 0 || !strings.HasPrefix(got, tc.want) || strings.Contains(errOut, "flag provided") || strings.Contains(errOut, "invalid value") {
			t.Errorf("ssh %v: exit %d, stderr %q, want it to start %q", tc.args, code, errOut, tc.want)
		}
	}
	// Roles are checked with the valid ones listed.
	if _, errOut, _ := d.ssh("grant", "admin", "production", "boss"); !strings.Contains(errOut, "viewer") || !strings.Contains(errOut, "deployer") {
		t.Errorf("grant with a bad role: %q", errOut)
	}

	// The slipway binary's own flags too.
	serve := exec.Command(slipwayBin, "serve", "--max-parallel", "x")
	if out, err := serve.CombinedOutput(); serve.ProcessState.ExitCode() != 2 ||
		string(out) != "slipway serve: --max-parallel \"x\": not a number\nusage: slipway serve [flags] (slipway serve -h lists them)\n" {
		t.Errorf("slipway serve --max-parallel x: %v %q", err, out)
	}

	// Help for two-word commands, exit 0.
	for args, want := range map[string]string{
		"backup list --help":        "usage: backup list APP/ENV",
		"config set --help":         "usage: config set APP/ENV [--secret] KEY=VALUE...",
		"help config set":           "usage: config set APP/ENV [--secret] KEY=VALUE...",
		"report list --help":        "usage: report list ENV [--json]",
		"run cli/production --help": "usage: run APP/ENV -- CMD...",
	} {
		out, errOut, code := d.ssh(strings.Fields(args)...)
		if code != 0 || !strings.HasPrefix(out, want) {
			t.Errorf("ssh %s: exit %d, out %q, stderr %q", args, code, out, errOut)
		}
	}
	help := d.mustSSH("help")
	for _, line := range strings.Split(help, "\n") {
		if len(line) > 100 {
			t.Errorf("help line of %d columns: %q", len(line), line)
		}
	}
	if !strings.Contains(help, "\n  version\n") {
		t.Errorf("help does not list version:\n%s", help)
	}

	// No variables: one line that says so.
	if out := d.mustSSH("config", "cli/production"); out != "no variables set for cli/production (set some with: config set cli/production KEY=VALUE)\n" {
		t.Errorf("config with no variables: %q", out)
	}

	// --json: an array from every reading command, also of one thing.
	ops := d.ops("--app", "cli")
	d.mustSSH("logs", "cli/production", "--app", "-n", "5") // records a logs operation
	for _, args := range [][]string{
		{"status", "--json"}, {"status", "cli/production", "--json"}, {"history", "cli/production", "--json"},
		{"ops", "--json"}, {"logs", fmt.Sprint(ops[0].ID), "--json"}, {"logs", "cli/production", "--app", "--json"},
		{"users", "--json"}, {"key", "list", "--json"}, {"access", "--json"}, {"report", "list", "production", "--json"},
		{"config", "cli/production", "--json"}, {"backup", "list", "cli/production", "--json"},
		{"limits", "cli/production", "--json"},
	} {
		var list []json.RawMessage
		out := d.mustSSH(args...)
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Errorf("ssh %v: not a JSON array: %v\n%s", args, err, out)
		}
		if args[0] != "report" && args[0] != "config" && args[0] != "backup" && args[0] != "access" && len(list) == 0 {
			t.Errorf("ssh %v: an empty array", args)
		}
	}
	var users []struct {
		Name  string
		Admin bool
	}
	d.sshJSON(&users, "users", "--json")
	if len(users) != 1 || users[0].Name != "admin" || !users[0].Admin {
		t.Errorf("users --json: %+v", users)
	}
	var keys []struct{ User, Fingerprint, Type string }
	d.sshJSON(&keys, "key", "list", "--json")
	if len(keys) != 1 || keys[0].User != "admin" || !strings.HasPrefix(keys[0].Fingerprint, "SHA256:") || keys[0].Type != "ssh-ed25519" {
		t.Errorf("key list --json: %+v", keys)
	}
	var limits []struct {
		CPU  int
		Text string
	}
	d.sshJSON(&limits, "limits", "cli/production", "--json")
	if len(limits) != 1 || limits[0].CPU != 0 || limits[0].Text == "" {
		t.Errorf("limits --json: %+v", limits)
	}
	var lines []struct{ Process, Line string }
	d.sshJSON(&lines, "logs", "cli/production", "--app", "--json")
	if len(lines) == 0 || lines[0].Process == "" {
		t.Errorf("logs --app --json: %+v", lines)
	}

	// An installation whose deploys all failed says why, even after reads.
	d.mustSSH("app", "create", "dud")
	_, proxyPort, _ := net.SplitHostPort(d.addrs["proxy"])
	if out := d.mustSSH("install", "dud/production", "--branch", "main"); !strings.Contains(out, "served at http://dud.production.localhost:"+proxyPort+"/") {
		t.Errorf("install does not say where the app answers:\n%s", out)
	}
	if st := d.mustSSH("status", "dud/production"); !strings.Contains(st, "new, nothing deployed yet: push branch main") {
		t.Errorf("status before any push:\n%s", st)
	}
	w := d.newApp("dud", "static")
	w.commitFile("slipway.yml", strings.Replace(staticManifest, "echo building $SLIPWAY_COMMIT", "echo compiling; exit 3", 1), "broken build")
	if out, code := w.push("deploy", "main"); code == 0 {
		t.Fatalf("push of a failing build exited 0:\n%s", out)
	}
	d.ssh("logs", "dud/production", "--app")
	if st := d.mustSSH("status", "dud/production"); !strings.Contains(st, `new, last deploy failed: build step "echo compiling; exit 3" exited with status 3`) {
		t.Errorf("status of an installation whose deploys failed:\n%s", st)
	}

	// run: a command that lost its SSH session says so.
	cmd := exec.Command("ssh", append(d.sshArgs(d.key), "run", "cli/production", "--", "sleep", "60")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var runOp opView
	eventually(t, 30*time.Second, "the run is running", func() (bool, string) {
		ops := d.ops("--type", "execute", "--status", "running")
		if len(ops) == 1 {
			runOp = ops[0]
		}
		return len(ops) == 1, fmt.Sprint(ops)
	})
	cmd.Process.Kill()
	cmd.Wait()
	eventually(t, 30*time.Second, "the run fails with a reason", func() (bool, string) {
		for _, o := range d.ops("--type", "execute") {
			if o.ID == runOp.ID {
				return o.Status == "failed", o.Status + ": " + o.Reason
			}
		}
		return false, "gone"
	})
	for _, o := range d.ops("--type", "execute") {
		if o.ID == runOp.ID && !strings.Contains(o.Reason, "the SSH session ended before the command did") {
			t.Errorf("run whose session ended: reason %q", o.Reason)
		}
	}
	if log := d.mustSSH("logs", fmt.Sprint(runOp.ID)); strings.Contains(log, "exit status -1") || !strings.Contains(log, "failed: the SSH session ended") {
		t.Errorf("log of the run whose session ended:\n%s", log)
	}
	// A command that exits non-zero: the status passes through, the reason says it.
	if _, _, code := d.ssh("run", "cli/production", "--", "sh", "-c", "'exit 4'"); code != 4 {
		t.Errorf("run exit 4: exit %d", code)
	}
	if o := d.ops("--type", "execute", "--limit", "1"); len(o) != 1 || o[0].Reason != "exited with status 4" {
		t.Errorf("run exit 4: %+v", o)
	}
	// A command that is not there: sh's status 127, not "exit status -1".
	if out, errOut, code := d.ssh("run", "cli/production", "--", "nosuchcmd"); code != 127 || !strings.Contains(out, "nosuchcmd: not found") || errOut != "" {
		t.Errorf("run nosuchcmd: exit %d, out %q, stderr %q", code, out, errOut)
	}
	if o := d.ops("--type", "execute", "--limit", "1"); len(o) != 1 || o[0].Reason != "exited with status 127: command not found" {
		t.Errorf("run nosuchcmd: %+v", o)
	}
}

// TestALaptopRunsCommandsOnARemote: `slipway remote add`, then commands
// sent whole, spaces and semicolons in an argument included.
func TestALaptopRunsCommandsOnARemote(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, _ := d.deployed("laptop", "hi\n")
	env := []string{"SLIPWAY_REMOTES=" + filepath.Join(d.dir, "remotes.json"),
		"SLIPWAY_SSH_OPTIONS=" + strings.Join(sshOptions(d.key), " ")}
	run(t, d.dir, env, slipwayBin, "remote", "add", "prod", "ssh://git@"+d.addrs["ssh"])
	if list := run(t, d.dir, env, slipwayBin, "remote", "list"); !strings.Contains(list, "* prod") {
		t.Errorf("remote list: %q", list)
	}
	message := `Back at  noon; sorry`
	if out := run(t, d.dir, env, slipwayBin, "maintenance", "laptop/production", "on", "--message", message); !strings.Contains(out, "Maintenance mode on") {
		t.Errorf("maintenance through the remote: %s", out)
	}
	if code, body, _ := d.get(host, "/"); code != 503 || !strings.Contains(body, message) {
		t.Errorf("the maintenance page: %d %q", code, body)
	}
	var status []struct{ App string }
	if err := json.Unmarshal([]byte(run(t, d.dir, env, slipwayBin, "-r", "prod", "status", "--json")), &status); err != nil || len(status) != 1 {
		t.Errorf("status --json through the remote: %+v %v", status, err)
	}
	cmd := exec.Command(slipwayBin, "-r", "nowhere", "status")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no remote nowhere") {
		t.Errorf("an unknown remote: %v %s", err, out)
	}
}
