package frontproxy

import (
	"strings"
	"testing"
)

func TestParsePrefixes(t *testing.T) {
	ps, err := ParsePrefixes("173.245.48.0/20, 192.0.2.3,2400:cb00::/32,::ffff:127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatPrefixes(ps); got != "173.245.48.0/20,192.0.2.3/32,2400:cb00::/32,127.0.0.1/32" {
		t.Errorf("parsed as %s", got)
	}
	for _, bad := range []string{"192.0.2.0/33", "example.com", "192.0.2.0/24,nope"} {
		_, err := ParsePrefixes(bad)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want a one-line error", bad, err)
		}
	}
}
