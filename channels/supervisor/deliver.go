package supervisor

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// serveDeliver unpacks the tar that follows the request into /app.
func (s *Supervisor) serveDeliver(conn net.Conn, br *bufio.Reader) error {
	if err := mkdirAll(s.path("/app")); err != nil {
		return err
	}
	app, err := unix.Open(s.path("/app"), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /app: %w", err)
	}
	defer unix.Close(app)
	return unpack(app, tar.NewReader(br))
}

func mkdirAll(dir string) error {
	if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	return nil
}

// unpack writes every entry of tr beneath the directory app. Each name is
// walked one component at a time from app with O_NOFOLLOW, so neither ".."
// nor a symlink (one the tree made a moment ago included) leads outside.
func unpack(app int, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the tree: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader { // git archive's commit id
			continue
		}
		parts, err := splitName(hdr.Name)
		if err != nil {
			return err
		}
		if parts == nil { // "." or "./"
			continue
		}
		if err := unpackEntry(app, parts, hdr, tr); err != nil {
			return fmt.Errorf("unpack %s: %w", oneLine(hdr.Name), err)
		}
	}
}

// splitName checks a tree name and splits it into its components.
func splitName(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") {
		return nil, fmt.Errorf("refusing %q: outside /app", oneLine(name))
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("refusing %q: outside /app", oneLine(name))
		default:
			parts = append(parts, p)
		}
	}
	return parts, nil
}

func unpackEntry(app int, parts []string, hdr *tar.Header, r io.Reader) error {
	dir, err := openParent(app, parts[:len(parts)-1])
	if err != nil {
		return err
	}
	if dir != app {
		defer unix.Close(dir)
	}
	base := parts[len(parts)-1]
	mode := uint32(hdr.Mode) & 0o777 // no setuid bits from a tree
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dir, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		return chmodDir(dir, base, mode)
	case tar.TypeReg, tar.TypeRegA:
		return writeFile(dir, base, mode, r)
	case tar.TypeSymlink:
		// The link is written, never followed: its target may say anything.
		removeEntry(dir, base)
		return unix.Symlinkat(hdr.Linkname, dir, base)
	case tar.TypeLink:
		return errors.New("hard links are not supported")
	default:
		return fmt.Errorf("entry type %q (not a file, directory or symlink) is not supported", string(hdr.Typeflag))
	}
}

// openParent opens app/parts..., making missing directories, refusing to
// pass through anything that is not a directory (a symlink included).
func openParent(app int, parts []string) (int, error) {
	dir := app
	for i, p := range parts {
		fd, err := unix.Openat(dir, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(dir, p, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = unix.Openat(dir, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if dir != app {
			unix.Close(dir)
		}
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return -1, fmt.Errorf("refusing to write through %s: not a directory (a symlink?)", path.Join(parts[:i+1]...))
			}
			return -1, err
		}
		dir = fd
	}
	return dir, nil
}

// chmodDir sets a directory's mode through an fd opened without following
// (fchmodat would follow a symlink put in its place).
func chmodDir(dir int, base string, mode uint32) error {
	fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("not a directory: %w", err)
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode)
}

// writeFile replaces dir/base with a new file holding r's bytes. Removing
// what was there first means an existing symlink or hard link is replaced,
// never written through.
func writeFile(dir int, base string, mode uint32, r io.Reader) error {
	removeEntry(dir, base)
	fd, err := unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := fdFile(fd, base)
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return err
	}
	return f.Close()
}

func removeEntry(dir int, base string) {
	_ = unix.Unlinkat(dir, base, 0)
}
