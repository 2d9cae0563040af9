package hooks

import (
	"reflect"
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
