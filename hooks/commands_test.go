package hooks

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestLookupCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		key  string
		rest int
	}{
		{[]string{"status"}, "status", 0},
		{[]string{"config", "set", "a/b", "K=V"}, "config set", 2},
		{[]string{"config", "a/b"}, "config", 1},
		{[]string{"report", "get", "prod", "2026-W47"}, "report get", 2},
		{[]string{"logs", "12", "-f"}, "logs", 2},
	} {
		cmd, rest, ok := lookupCommand(tc.args)
		if !ok || commandKey(cmd.usage) != tc.key || len(rest) != tc.rest {
			t.Errorf("lookupCommand(%v) = %q %v %v", tc.args, cmd.usage, rest, ok)
		}
	}
	if _, _, ok := lookupCommand([]string{"frobnicate"}); ok {
		t.Error("unknown command found")
	}
}

func TestHelpListsEveryCommandOnceByTopic(t *testing.T) {
	seen := map[string]bool{}
	for _, topic := range helpTopics {
		for _, k := range topic.commands {
			if _, ok := commands[k]; !ok {
				t.Errorf("help topic %q lists %q, which is not a command", topic.title, k)
			}
			if seen[k] {
				t.Errorf("help lists %q twice", k)
			}
			seen[k] = true
		}
	}
	for k := range commands {
		if !seen[k] {
			t.Errorf("command %q is in no help topic", k)
		}
	}
	var b strings.Builder
	(&Server{}).cmdHelp(&call{out: &b}, nil)
	for _, line := range strings.Split(b.String(), "\n") {
		if len(line) > helpWidth {
			t.Errorf("help line of %d columns: %q", len(line), line)
		}
	}
	b.Reset()
	if err := (&Server{}).cmdHelp(&call{out: &b}, []string{"config", "set"}); err != nil || !strings.HasPrefix(b.String(), "usage: config set APP/ENV") {
		t.Errorf("help config set: %v %q", err, b.String())
	}
}

func TestFlagErrorsInSlipwaysWords(t *testing.T) {
	fs := newFlagSetForTest()
	fs.Bool("json", false, "")
	fs.Int("limit", 50, "")
	fs.Duration("wait", 0, "")
	for args, want := range map[string]string{
		"--jsn":        "unknown flag --jsn",
		"-x":           "unknown flag -x",
		"--limit x":    `--limit "x": not a number`,
		"--limit":      "--limit needs a value",
		"--json=maybe": `--json "maybe": not true or false`,
		"--wait 3":     `--wait "3": not a duration such as 30s`,
	} {
		_, err := parseFlags(fs, strings.Fields(args))
		if err == nil || err.Error() != want {
			t.Errorf("flags %q: %v, want %q", args, err, want)
		}
	}
	for _, args := range [][]string{{"--help"}, {"a/b", "-h"}} {
		if !wantsHelp(args) {
			t.Errorf("%q does not ask for help", args)
		}
	}
	if wantsHelp([]string{"a/b", "--", "ls", "--help"}) {
		t.Error("run's own --help taken as slipway's")
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h":        now.Add(-24 * time.Hour),
		"7d":         now.AddDate(0, 0, -7),
		"2026-11-01": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := parseSince("soon", now); err == nil {
		t.Error("parseSince accepted soon")
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	fs := newFlagSetForTest()
	json := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, []string{"app/env", "--json"})
	if err != nil || !*json || len(pos) != 1 || pos[0] != "app/env" {
		t.Fatalf("parseFlags: %v %v %v", pos, *json, err)
	}
}

func newFlagSetForTest() *flag.FlagSet { return flag.NewFlagSet("t", flag.ContinueOnError) }

func TestCommandsWithoutFlagsRefuseThem(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restart", "a/b", "--force"}, "unknown flag --force"},
		{[]string{"cancel", "-x", "12"}, "unknown flag -x"},
		{[]string{"track", "a/b", "--branch=main"}, "unknown flag --branch"},
		{[]string{"restart", "a/b"}, ""},
		{[]string{"run", "a/b", "--", "ls", "-l"}, ""},
		{[]string{"status", "--jsn"}, ""}, // status parses its own flags
	} {
		cmd, rest, ok := lookupCommand(tc.args)
		if !ok {
			t.Fatalf("no command %v", tc.args)
		}
		err := checkNoFlags(cmd.usage, rest)
		if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestEveryCommandHasItsOwnHelp(t *testing.T) {
	for key, cmd := range commands {
		var b strings.Builder
		if err := (&Server{}).cmdHelp(&call{out: &b}, strings.Fields(key)); err != nil {
			t.Errorf("help %s: %v", key, err)
		}
		if want := "usage: " + strings.Fields(cmd.usage)[0]; !strings.HasPrefix(b.String(), want) {
			t.Errorf("help %s: %q, want it to start %q", key, b.String(), want)
		}
		for _, line := range strings.Split(b.String(), "\n") {
			if len(line) > helpWidth {
				t.Errorf("help %s: line of %d columns: %q", key, len(line), line)
			}
		}
		if !wantsHelp(append(strings.Fields(key)[1:], "--help")) {
			t.Errorf("%s --help is not a request for help", key)
		}
	}
}

func TestStateLineSaysWhyNothingServes(t *testing.T) {
	failed := operationView{ID: 3, Type: "deploy", Status: store.StatusFailed, Reason: "app never became healthy"}
	read := operationView{ID: 4, Type: "logs", Status: store.StatusSucceeded}
	lost := operationView{ID: 5, Type: "deploy", Status: store.StatusFailed}
	for _, tc := range []struct {
		v    installationView
		want string
	}{
		{installationView{State: "new", LastOperation: &failed, LastFailure: &failed}, "new, last deploy failed: app never became healthy"},
		{installationView{State: "new", LastOperation: &read, LastFailure: &failed}, "new, last deploy failed: app never became healthy"},
		{installationView{State: "new", LastOperation: &lost, LastFailure: &lost}, "new, last deploy failed (see: logs 5)"},
		{installationView{State: "new", ChannelKind: store.ChannelBranch, ChannelRef: "main"}, "new, nothing deployed yet: push branch main"},
		{installationView{State: "running", Instance: "x", LastOperation: &read}, "running"},
	} {
		if got := stateLine(tc.v); got != tc.want {
			t.Errorf("stateLine = %q, want %q", got, tc.want)
		}
	}
	ops := []store.Operation{{Type: store.OpLogs, Status: store.StatusSucceeded}, {Type: store.OpDeploy, Status: store.StatusFailed, Reason: "r"}, {Type: store.OpDeploy, Status: store.StatusSucceeded}}
	if f := lastFailure(ops); f == nil || f.Reason != "r" {
		t.Errorf("lastFailure = %+v, want the failed deploy", f)
	}
	if f := lastFailure(ops[2:]); f != nil {
		t.Errorf("lastFailure after a success = %+v", f)
	}
}

func TestWrappedUsageHangsUnderTheCommand(t *testing.T) {
	var b strings.Builder
	writeUsage(&b, commands["ops"])
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "usage: ops [--app A]") || !strings.HasPrefix(lines[1], "         [") {
		t.Fatalf("usage of ops:\n%s", b.String())
	}
	for _, l := range lines {
		if len(l) > helpWidth {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
	}
}
