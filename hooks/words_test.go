package hooks

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"git-receive-pack '/hello'", []string{"git-receive-pack", "/hello"}},
		{"  status   shop/prod  --json ", []string{"status", "shop/prod", "--json"}},
		{`maintenance a/b on --message 'Back at noon'`, []string{"maintenance", "a/b", "on", "--message", "Back at noon"}},
		{`x "a \"b\" \n $HOME"`, []string{"x", `a "b" \n $HOME`}},
		{`x it\'s a\ b`, []string{"x", "it's", "a b"}},
		{`x ''`, []string{"x", ""}},
		{`x a'b'"c"d`, []string{"x", "abcd"}},
		{"", nil},
	} {
		got, err := splitWords(c.line)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{`status 'shop/prod`, `run a/b -- echo "hi`, `x \`, `x "a\"`} {
		if got, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) = %q, want an error", bad, got)
		}
	}
}

func TestCommandWordsTakeAJSONArray(t *testing.T) {
	got, err := commandWords(`["maintenance","a/b","on","--message","Back at noon; it's \"fine\""]`)
	if err != nil || len(got) != 5 || got[4] != `Back at noon; it's "fine"` {
		t.Errorf("a JSON array: %q %v", got, err)
	}
	if got, err := commandWords("status a/b"); err != nil || len(got) != 2 {
		t.Errorf("a line: %q %v", got, err)
	}
	for _, bad := range []string{`["status", 1]`, `[status]`, `["status"`} {
		if _, err := commandWords(bad); err == nil || !strings.Contains(err.Error(), "JSON array") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
