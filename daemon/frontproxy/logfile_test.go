package frontproxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFileKeepsItselfUnderItsSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.log")
	os.WriteFile(path, []byte("from before\n"), 0o600)
	l, err := OpenLog(path, 40)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, line := range []string{"one 456789012345678\n", "two 456789012345678\n", "three\n"} {
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	now, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(now) != "two 456789012345678\nthree\n" || string(old) != "from before\none 456789012345678\n" {
		t.Errorf("log %q, older %q", now, old)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 || strings.Count(string(now), "\n") != 2 {
		t.Errorf("mode %v", fi.Mode())
	}
}
