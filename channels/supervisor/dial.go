package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// DialInstance connects to the supervisor of the instance whose init has
// host pid pid. The daemon is root on the host; the instance is not to be
// trusted: the socket is resolved inside the instance's root
// (RESOLVE_IN_ROOT, no magic links, the last component not followed) and
// must be a socket, then connected through /proc/self/fd, so no symlink in
// the instance can point the daemon at a host file. A missing socket or
// one nobody listens on yet is retried every 2 ms until ctx ends: the
// instance may have booted a moment ago.
func DialInstance(ctx context.Context, pid int) (net.Conn, error) {
	root, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open the root of pid %d: %v", ErrNoSupervisor, pid, err)
	}
	defer unix.Close(root)
	var host, own unix.Stat_t
	if err := unix.Stat("/", &host); err != nil {
		return nil, err
	}
	// Until LXC has pivoted, the init's root is the host's: its socket would be ours.
	if err := unix.Fstat(root, &own); err != nil || (own.Dev == host.Dev && own.Ino == host.Ino) {
		return nil, fmt.Errorf("%w: pid %d has no root of its own", ErrNoSupervisor, pid)
	}
	return dialIn(ctx, root)
}

// DialRoot connects to the supervisor whose root directory is dir, with
// the same resolution rules as DialInstance (for tests and tools that run
// a supervisor outside an instance).
func DialRoot(ctx context.Context, dir string) (net.Conn, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSupervisor, err)
	}
	defer unix.Close(root)
	return dialIn(ctx, root)
}

func dialIn(ctx context.Context, root int) (net.Conn, error) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := dialOnce(ctx, root)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: /%s: %v", ErrNoSupervisor, SocketPath, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: /%s: %v (%w)", ErrNoSupervisor, SocketPath, err, ctx.Err())
		case <-tick.C:
		}
	}
}

func dialOnce(ctx context.Context, root int) (net.Conn, error) {
	fd, err := unix.Openat2(root, SocketPath, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, errors.New("not a socket")
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(fd))
}
