package supervisor

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeliverUnpacksTheTreeKeepingModes(t *testing.T) {
	_, root := newTest(t, Options{})
	os.RemoveAll(root + "/app") // deliver makes /app itself
	tree := tarOf(t,
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/run", body: "#!/bin/sh\necho hi\n", mode: 0o755},
		entry{name: "README", body: "hello\n"},
		entry{name: "deep/er/file.txt", body: "x"},
		entry{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"},
	)
	if err := Deliver(context.Background(), dial(t, root), tree); err != nil {
		t.Fatal(err)
	}
	check := func(name string, mode os.FileMode, body string) {
		t.Helper()
		st, err := os.Stat(filepath.Join(root, "app", name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), mode)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "app", name)); string(b) != body {
			t.Errorf("%s: %q, want %q", name, b, body)
		}
	}
	check("bin/run", 0o755, "#!/bin/sh\necho hi\n")
	check("README", 0o644, "hello\n")
	check("deep/er/file.txt", 0o644, "x")
	if l, err := os.Readlink(root + "/app/link"); err != nil || l != "/etc/passwd" {
		t.Errorf("symlink kept as %q, %v", l, err)
	}
}

func TestDeliverRefusesEntriesOutsideApp(t *testing.T) {
	outside := t.TempDir()
	cases := map[string][]entry{
		"dot-dot":          {{name: "../x", body: "bad"}},
		"dot-dot inside":   {{name: "a/../../x", body: "bad"}},
		"absolute":         {{name: outside + "/x", body: "bad"}},
		"through symlink":  {{name: "l", typ: tar.TypeSymlink, link: outside}, {name: "l/x", body: "bad"}},
		"through relative": {{name: "l", typ: tar.TypeSymlink, link: "../../../../../../.." + outside}, {name: "l/x", body: "bad"}},
		"hard link":        {{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			_, root := newTest(t, Options{})
			err := Deliver(context.Background(), dial(t, root), tarOf(t, entries...))
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("got %v, want a refusal", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			t.Logf("%v", err)
			if _, err := os.Stat(outside + "/x"); err == nil {
				t.Fatal("a file was written outside /app")
			}
		})
	}
}

func TestDeliverReplacesASymlinkRatherThanWritingThroughIt(t *testing.T) {
	_, root := newTest(t, Options{})
	outside := filepath.Join(t.TempDir(), "target")
	os.WriteFile(outside, []byte("host file"), 0o644)
	tree := tarOf(t, entry{name: "f", typ: tar.TypeSymlink, link: outside}, entry{name: "f", body: "app file"})
	if err := Deliver(context.Background(), dial(t, root), tree); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "host file" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if b, _ := os.ReadFile(root + "/app/f"); string(b) != "app file" {
		t.Errorf("app/f is %q", b)
	}
}

func TestDeliverOfNotATarFails(t *testing.T) {
	_, root := newTest(t, Options{})
	err := Deliver(context.Background(), dial(t, root), strings.NewReader(strings.Repeat("not a tar ", 100)))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v", err)
	}
}
