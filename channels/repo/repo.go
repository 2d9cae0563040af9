// Package repo reads the bare git repositories slipway keeps for each app:
// refs, commits, files and trees, through go-git. Writing (receiving pushes) is
// done by git receive-pack; see package hooks.
package repo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

var (
	// ErrUnknownRef means no branch, tag or commit has that name.
	ErrUnknownRef = errors.New("unknown branch, tag or commit")
	// ErrAmbiguous means a short commit ID matches more than one commit.
	ErrAmbiguous = errors.New("short commit ID is ambiguous")
	// ErrNoFile means the commit has no such file.
	ErrNoFile = errors.New("no such file in commit")
)

// Repo is one bare repository. Open one per use: git receive-pack writes new
// objects behind go-git's back, and a fresh open sees them.
type Repo struct {
	dir string
	git *git.Repository
}

// Init creates a bare repository at dir with main as its default branch.
func Init(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	_, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	return err
}

// Open opens the bare repository at dir.
func Open(dir string) (*Repo, error) {
	r, err := git.PlainOpen(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", filepath.Base(dir), err)
	}
	return &Repo{dir: dir, git: r}, nil
}

// Branch returns the commit a branch points at.
func (r *Repo) Branch(name string) (string, error) {
	ref, err := r.git.Reference(plumbing.NewBranchReferenceName(name), true)
	if err != nil {
		return "", fmt.Errorf("branch %q: %w", name, ErrUnknownRef)
	}
	return ref.Hash().String(), nil
}

// Branches lists branch names.
func (r *Repo) Branches() ([]string, error) {
	iter, err := r.git.Branches()
	if err != nil {
		return nil, err
	}
	var out []string
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		out = append(out, ref.Name().Short())
		return nil
	})
	return out, err
}

// Resolve turns a tag, a branch, a full or a short commit ID into a full commit ID.
// Tags win over branches, as in git; a short ID must name exactly one commit.
func (r *Repo) Resolve(name string) (string, error) {
	if ref, err := r.git.Reference(plumbing.NewTagReferenceName(name), true); err == nil {
		return r.peel(ref.Hash())
	}
	if ref, err := r.git.Reference(plumbing.NewBranchReferenceName(name), true); err == nil {
		return ref.Hash().String(), nil
	}
	if !isHex(name) || len(name) < 4 || len(name) > 40 {
		return "", fmt.Errorf("%q: %w", name, ErrUnknownRef)
	}
	if len(name) == 40 {
		if _, err := r.git.CommitObject(plumbing.NewHash(name)); err != nil {
			return "", fmt.Errorf("%q: %w", name, ErrUnknownRef)
		}
		return name, nil
	}
	iter, err := r.git.CommitObjects()
	if err != nil {
		return "", err
	}
	var found []string
	prefix := strings.ToLower(name)
	iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), prefix) {
			found = append(found, c.Hash.String())
		}
		return nil
	})
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%q: %w", name, ErrUnknownRef)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("%q matches %d commits: %w", name, len(found), ErrAmbiguous)
	}
}

// peel follows annotated tags down to the commit.
func (r *Repo) peel(h plumbing.Hash) (string, error) {
	for i := 0; i < 10; i++ {
		tag, err := r.git.TagObject(h)
		if err != nil {
			break
		}
		h = tag.Target
	}
	if _, err := r.git.CommitObject(h); err != nil {
		return "", fmt.Errorf("tag does not point at a commit: %w", ErrUnknownRef)
	}
	return h.String(), nil
}

// Commit is what history shows of one commit.
type Commit struct {
	ID      string
	Subject string
	Author  string
	When    int64 // unix seconds
}

// History returns up to n commits reachable from commit, newest first.
func (r *Repo) History(commit string, n int) ([]Commit, error) {
	iter, err := r.git.Log(&git.LogOptions{From: plumbing.NewHash(commit)})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", short(commit), err)
	}
	var out []Commit
	for len(out) < n {
		c, err := iter.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		subject, _, _ := strings.Cut(c.Message, "\n")
		out = append(out, Commit{ID: c.Hash.String(), Subject: subject, Author: c.Author.Name, When: c.Author.When.Unix()})
	}
	return out, nil
}

// IsAncestor reports whether ancestor is reachable from commit.
func (r *Repo) IsAncestor(ancestor, commit string) (bool, error) {
	a, err := r.git.CommitObject(plumbing.NewHash(ancestor))
	if err != nil {
		return false, err
	}
	c, err := r.git.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return false, err
	}
	return a.IsAncestor(c)
}

// ReadFile returns a file's content at a commit.
func (r *Repo) ReadFile(commit, path string) ([]byte, error) {
	t, err := r.Tree(commit)
	if err != nil {
		return nil, err
	}
	return t.ReadFile(path)
}

// Tree is the file tree of one commit, read once: what language detection
// and the Procfile need, without looking the commit up again per file.
type Tree struct {
	commit string
	tree   *object.Tree
}

// Tree opens the file tree of commit.
func (r *Repo) Tree(commit string) (*Tree, error) {
	t, err := r.tree(commit)
	if err != nil {
		return nil, err
	}
	return &Tree{commit: commit, tree: t}, nil
}

// ReadFile returns a file's content; ErrNoFile when the path is no file.
func (t *Tree) ReadFile(path string) ([]byte, error) {
	f, err := t.tree.File(path)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", path, short(t.commit), ErrNoFile)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// Exists reports whether path names a file, a directory or a link in the tree.
func (t *Tree) Exists(path string) bool {
	path = strings.Trim(path, "/")
	if path == "" {
		return true
	}
	_, err := t.tree.FindEntry(path)
	return err == nil
}

func (r *Repo) tree(commit string) (*object.Tree, error) {
	c, err := r.git.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", short(commit), ErrUnknownRef)
	}
	return c.Tree()
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
