package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Delivering the app without an Incus exec.
//
// Each exec costs Incus four websockets and a re-exec of incusd, a tenth of
// a second here, and putting a fresh instance's app in place is on every
// deploy's critical path. The base image's receiver (channels/container/baseimage,
// /etc/slipway/receive) waits at boot on the FIFO /run/slipway/deliver. The
// daemon, root on the same host, opens that FIFO through /proc/<init>/root
// and writes one tar holding app/ and etc/slipway/web.new; the receiver
// unpacks it as the instance's own root (so ownership is the instance's),
// writes the outcome to /run/slipway/delivery and wakes the runner.
//
// Paths inside the instance are resolved with openat2(RESOLVE_IN_ROOT), so a
// symlink in the instance cannot point the daemon at a file of the host.

const (
	receiverPath = "etc/slipway/receive"
	deliverFIFO  = "run/slipway/deliver"
	deliveryFile = "run/slipway/delivery"
	deliveryErr  = "run/slipway/delivery.err"
)

// errNoReceiver: the instance cannot take a delivery (an image without the
// receiver, or one whose app was started before); nothing was read from the
// tree, so the caller can use an exec instead.
var errNoReceiver = errors.New("instance has no app receiver waiting")

// deliver writes tree (a tar of the app) and the web script to the
// instance's receiver and waits for it to unpack them.
func (c *Incus) deliver(ctx context.Context, name string, tree io.Reader, script string) error {
	pid, err := c.InitPID(name)
	if err != nil {
		return err
	}
	root, err := unix.Open("/proc/"+strconv.FormatInt(pid, 10)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer unix.Close(root)
	// Never the host's own files: the instance must have its own root.
	var host, own unix.Stat_t
	if err := unix.Stat("/", &host); err != nil {
		return err
	}
	if err := unix.Fstat(root, &own); err != nil || (own.Dev == host.Dev && own.Ino == host.Ino) {
		return fmt.Errorf("deliver the app to %s: %w (its init has no root of its own yet)", name, ErrNotRunning)
	}
	if !existsIn(root, receiverPath) || existsIn(root, strings.TrimPrefix(WebScript, "/")) {
		return errNoReceiver
	}

	fifo, err := openFIFO(ctx, root)
	if err != nil {
		return fmt.Errorf("deliver the app to %s: %w", name, err)
	}
	stop := context.AfterFunc(ctx, func() { fifo.SetWriteDeadline(aLongTimeAgo) })
	err = writeDelivery(fifo, tree, script)
	stop()
	if cerr := fifo.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("deliver the app to %s: %w", name, err)
	}
	return waitDelivered(ctx, root, name)
}

var aLongTimeAgo = time.Unix(1, 0)

// openFIFO opens the receiver's FIFO for writing once the receiver has made
// it and is reading (ENOENT and ENXIO until then: the instance may have
// booted a moment ago).
func openFIFO(ctx context.Context, root int) (*os.File, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fd, err := unix.Openat2(root, deliverFIFO, how)
		if err == nil {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				unix.Close(fd)
				return nil, fmt.Errorf("/%s is not a FIFO", deliverFIFO)
			}
			// Non-blocking, so the runtime's poller writes it and a
			// deadline can interrupt a receiver that stopped reading.
			return os.NewFile(uintptr(fd), "/"+deliverFIFO), nil
		}
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("open /%s: %w", deliverFIFO, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the instance's receiver did not open /%s within 10s", deliverFIFO)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// writeDelivery writes the receiver's tar: tree's entries under app/, then
// the web script as etc/slipway/web.new (last, so the app is complete when
// the receiver moves it into place).
func writeDelivery(w io.Writer, tree io.Reader, script string) error {
	tw := tar.NewWriter(w)
	tr := tar.NewReader(tree)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read the app's tree: %w", err)
		}
		name, ok := insideApp(hdr.Name)
		if !ok {
			return fmt.Errorf("the app's tree has an entry outside it: %q", hdr.Name)
		}
		if hdr.Typeflag == tar.TypeDir {
			name += "/"
		}
		hdr.Name = name
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, ok = insideApp(hdr.Linkname); !ok {
				return fmt.Errorf("the app's tree has a hard link outside it: %q", hdr.Linkname)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	hdr := &tar.Header{Name: strings.TrimPrefix(WebScript, "/") + ".new", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(script)), ModTime: time.Now()}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, script); err != nil {
		return err
	}
	return tw.Close()
}

// insideApp maps a tree entry to its path under app/, refusing any that
// would land outside it.
func insideApp(name string) (string, bool) {
	clean := path.Clean("/" + name)
	if clean == "/" || strings.Contains(name, "\x00") {
		return "", false
	}
	// Clean of an absolute path removes every "..", so a name like
	// "../x" is caught by comparing it with its cleaned form.
	if strings.TrimPrefix(path.Clean(name), "./") != clean[1:] {
		return "", false
	}
	return "app" + clean, true
}

// waitDelivered waits for the receiver's outcome.
func waitDelivered(ctx context.Context, root int, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if status, err := readIn(root, deliveryFile); err == nil {
			if strings.TrimSpace(string(status)) == "ok" {
				return nil
			}
			msg, _ := readIn(root, deliveryErr)
			return fmt.Errorf("unpacking the commit into /app failed in %s: %s", name, strings.TrimSpace(string(msg)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the receiver in %s did not report within 30s", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func existsIn(root int, name string) bool {
	fd, err := unix.Openat2(root, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// readIn reads a small regular file of the instance (at most 4 KiB).
func readIn(root int, name string) ([]byte, error) {
	fd, err := unix.Openat2(root, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("/%s is not a regular file", name)
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, io.LimitReader(f, 4096))
	return buf.Bytes(), err
}
