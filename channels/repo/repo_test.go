package repo

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// testRepo makes a bare repository with real git: three commits on main, a
// lightweight and an annotated tag, a symlink and an executable.
func testRepo(t *testing.T) (dir string, commits []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("needs git")
		}
		t.Skip("needs git")
	}
	work := t.TempDir()
	bare := filepath.Join(t.TempDir(), "app.git")
	if err := Init(bare); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+work,
			"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	for i, content := range []string{"one", "two", "three"} {
		os.WriteFile(filepath.Join(work, "file.txt"), []byte(content+"\n"), 0o644)
		if i == 1 {
			os.MkdirAll(filepath.Join(work, "bin"), 0o755)
			os.WriteFile(filepath.Join(work, "bin", "run"), []byte("#!/bin/sh\necho hi\n"), 0o755)
			os.Symlink("file.txt", filepath.Join(work, "link"))
		}
		git("add", "-A")
		git("commit", "-q", "-m", "commit "+content)
		commits = append(commits, git("rev-parse", "HEAD"))
		if i == 0 {
			git("tag", "v1")
		}
		if i == 1 {
			git("tag", "-a", "v2", "-m", "release two")
		}
	}
	git("push", "-q", bare, "main", "--tags")
	return bare, commits
}

func TestResolve(t *testing.T) {
	dir, commits := testRepo(t)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ref, want string }{
		{"main", commits[2]},
		{"v1", commits[0]},
		{"v2", commits[1]}, // annotated tag peels to its commit
		{commits[1], commits[1]},
		{commits[0][:10], commits[0]},
		{strings.ToUpper(commits[0][:8]), commits[0]},
	} {
		got, err := r.Resolve(tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
	for _, ref := range []string{"nope", "0000000000", "ab", strings.Repeat("f", 40)} {
		if _, err := r.Resolve(ref); !errors.Is(err, ErrUnknownRef) {
			t.Errorf("Resolve(%q) error %v, want ErrUnknownRef", ref, err)
		}
	}
}

func TestResolveAmbiguousShortID(t *testing.T) {
	dir, commits := testRepo(t)
	r, _ := Open(dir)
	// Write commits with go-git until two share a 4-digit prefix (the birthday
	// bound makes that a few hundred), then resolve that prefix.
	parent, _ := r.git.CommitObject(plumbing.NewHash(commits[2]))
	seen := map[string]bool{}
	for _, c := range commits {
		seen[c[:4]] = true
	}
	var prefix string
	for i := 0; prefix == "" && i < 5000; i++ {
		c := &object.Commit{
			Author:   object.Signature{Name: "T", Email: "t@example.invalid", When: parent.Author.When},
			Message:  fmt.Sprintf("filler %d", i),
			TreeHash: parent.TreeHash,
		}
		c.Committer = c.Author
		obj := r.git.Storer.NewEncodedObject()
		if err := c.Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := r.git.Storer.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		if seen[h.String()[:4]] {
			prefix = h.String()[:4]
		}
		seen[h.String()[:4]] = true
	}
	if prefix == "" {
		t.Fatal("no two commits shared a 4-digit prefix")
	}
	r, _ = Open(dir)
	if _, err := r.Resolve(prefix); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Resolve(%q) error %v, want ErrAmbiguous", prefix, err)
	}
}

func TestHistoryFileAndTar(t *testing.T) {
	dir, commits := testRepo(t)
	r, _ := Open(dir)
	hist, err := r.History(commits[2], 10)
	if err != nil || len(hist) != 3 || hist[0].ID != commits[2] || hist[2].Subject != "commit one" {
		t.Fatalf("history %+v %v", hist, err)
	}
	data, err := r.ReadFile(commits[0], "file.txt")
	if err != nil || string(data) != "one\n" {
		t.Fatalf("ReadFile: %q %v", data, err)
	}
	if _, err := r.ReadFile(commits[0], "missing"); !errors.Is(err, ErrNoFile) {
		t.Fatalf("ReadFile missing: %v", err)
	}
	var buf bytes.Buffer
	if err := r.WriteTar(commits[1], &buf); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	if h := got["bin/run"]; h == nil || h.Mode != 0o755 {
		t.Errorf("bin/run: %+v", h)
	}
	if h := got["link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "file.txt" {
		t.Errorf("link: %+v", h)
	}
	if h := got["bin/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("bin/: %+v", h)
	}
	if h := got["file.txt"]; h == nil || h.Size != 4 {
		t.Errorf("file.txt: %+v", h)
	}
}

func TestTreeExists(t *testing.T) {
	dir, commits := testRepo(t)
	r, _ := Open(dir)
	tree, err := r.Tree(commits[1])
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"file.txt": true, "bin": true, "bin/": true, "bin/run": true, "link": true,
		"missing": false, "bin/missing": false, "file.txt/x": false,
	} {
		if got := tree.Exists(path); got != want {
			t.Errorf("Exists(%q) = %v, want %v", path, got, want)
		}
	}
	if old, _ := r.Tree(commits[0]); old.Exists("bin") {
		t.Error("bin exists in the first commit, which has none")
	}
	if data, err := tree.ReadFile("bin/run"); err != nil || !strings.Contains(string(data), "echo hi") {
		t.Errorf("ReadFile bin/run: %q %v", data, err)
	}
	if _, err := tree.ReadFile("bin"); !errors.Is(err, ErrNoFile) {
		t.Errorf("ReadFile of a directory: %v, want ErrNoFile", err)
	}
}
