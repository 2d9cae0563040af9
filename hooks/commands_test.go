package hooks

import (
	"flag"
	"testing"
	"time"
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
	for _, usage := range commandOrder() {
		if _, ok := commands[commandKey(usage)]; !ok {
			t.Errorf("help lists %q, which is not a command", usage)
		}
	}
	if len(commandOrder()) != len(commands) {
		t.Errorf("help lists %d commands, %d exist", len(commandOrder()), len(commands))
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
