package baseimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// packTree writes the tree under dir into tw, every name under prefix
// ("rootfs/"), in lexical order. It keeps what a root filesystem needs and
// archive/tar's FileInfoHeader alone does not: numeric owners only (the
// host's user names mean nothing in the image), hard links as links (dpkg
// makes a few, and doubling them would grow the image), and extended
// attributes (file capabilities), which Incus restores when it unpacks
// (--xattrs-include=*). Sockets cannot be archived and are skipped.
func packTree(tw *tar.Writer, dir, prefix string) error {
	links := map[[2]uint64]string{}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := prefix + filepath.ToSlash(rel)
		if rel == "." {
			name = prefix
		}
		return packEntry(tw, p, name, links)
	})
}

// packEntry writes one file, directory, link or device node.
func packEntry(tw *tar.Writer, p, name string, links map[[2]uint64]string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket != 0 {
		return nil
	}
	target := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(p); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	h.Name, h.Uname, h.Gname, h.Format = name, "", "", tar.FormatPAX
	if fi.IsDir() && !strings.HasSuffix(h.Name, "/") {
		h.Name += "/"
	}
	// Whole seconds: sub-second times cost a PAX record per file.
	h.ModTime, h.AccessTime, h.ChangeTime = h.ModTime.Truncate(time.Second), time.Time{}, time.Time{}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := links[key]; ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
		} else {
			links[key] = name
		}
	}
	if err := addXattrs(h, p); err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return nil
	}
	return copyFile(tw, p, name)
}

// addXattrs records p's extended attributes as PAX records, the way GNU tar
// --xattrs does.
func addXattrs(h *tar.Header, p string) error {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return err
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return err
	}
	for _, attr := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		val := make([]byte, 256)
		n, err := unix.Lgetxattr(p, attr, val)
		if errors.Is(err, unix.ERANGE) {
			if n, err = unix.Lgetxattr(p, attr, nil); err == nil {
				val = make([]byte, n)
				n, err = unix.Lgetxattr(p, attr, val)
			}
		}
		if err != nil {
			return err
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+attr] = string(val[:n])
	}
	return nil
}

func copyFile(tw *tar.Writer, p, name string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	return nil
}
