package repo

import (
	"archive/tar"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// WriteTar writes the tree of commit as an uncompressed tar stream (what
// `git archive` would give), so it can be unpacked into an instance.
func (r *Repo) WriteTar(commit string, w io.Writer) error {
	c, err := r.git.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return fmt.Errorf("commit %s: %w", short(commit), ErrUnknownRef)
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	mtime := c.Committer.When
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("walk tree of %s: %w", short(commit), err)
		}
		hdr := &tar.Header{Name: name, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		switch entry.Mode {
		case filemode.Dir:
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		case filemode.Submodule:
			continue
		}
		blob, err := r.git.BlobObject(entry.Hash)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rd, err := blob.Reader()
		if err != nil {
			return err
		}
		switch entry.Mode {
		case filemode.Symlink:
			target, err := io.ReadAll(rd)
			rd.Close()
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, string(target), 0o777
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		case filemode.Executable:
			hdr.Mode = 0o755
		default:
			hdr.Mode = 0o644
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, blob.Size
		if err := tw.WriteHeader(hdr); err != nil {
			rd.Close()
			return err
		}
		_, err = io.Copy(tw, rd)
		rd.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
