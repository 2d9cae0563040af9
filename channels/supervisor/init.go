package supervisor

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Main is the supervisor binary: as PID 1 of an instance it does an init's
// duties and serves /run/slipway/supervisor.sock; run by hand it serves a
// socket under -root (for trying it out). It returns the exit code.
func Main(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	fs := flag.NewFlagSet("slipway-supervisor", flag.ContinueOnError)
	root := fs.String("root", "/", "where /app and /run/slipway are (not as PID 1)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := Options{Root: *root, Logger: log}
	if os.Getpid() == 1 {
		opts = Options{Root: "/", ReapAll: true, Logger: log}
		// Files the apps make get the usual mode, whatever LXC left us.
		unix.Umask(0o022)
		mountRun(log)
	}
	s := New(opts)
	// The socket first: a deploy is waiting for it.
	if err := s.Listen(); err != nil {
		log.Error("Listen on the control socket", "err", err)
		return 1
	}
	if os.Getpid() == 1 {
		initRest(log)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGPWR, sigRTMIN3, syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	_ = s.Run(ctx)
	if os.Getpid() == 1 {
		finish()
	}
	return 0
}

// sigRTMIN3 is how systemd is asked to halt. liblxc sends it instead of
// SIGPWR when init has it blocked (its test for systemd), and Go's runtime
// threads run with it blocked: `incus stop` sends us this one.
const sigRTMIN3 = syscall.Signal(34 + 3) // glibc's SIGRTMIN, as liblxc counts

// mountRun gives /run a tmpfs unless the image or Incus mounted one:
// /run must be empty at boot and never on the image's disk.
func mountRun(log *slog.Logger) {
	if isMountPoint("/run") {
		return
	}
	_ = os.MkdirAll("/run", 0o755)
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		log.Warn("Mount a tmpfs on /run", "err", err)
	}
}

// initRest is what PID 1 does once the socket listens. Each step is best
// effort: an app may well run without it.
func initRest(log *slog.Logger) {
	if _, err := os.Stat("/dev/shm"); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir("/dev/shm", 0o1777); err != nil {
			log.Warn("Make /dev/shm", "err", err)
		} else if err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			log.Warn("Mount a tmpfs on /dev/shm", "err", err)
		}
	}
	if err := loopbackUp(); err != nil {
		log.Warn("Bring lo up", "err", err)
	}
	if err := os.MkdirAll("/app", 0o755); err != nil {
		log.Warn("Make /app", "err", err)
	}
}

// loopbackUp sets IFF_UP on lo with an ioctl: the instance's lo starts
// down, and an image may have no ip(8).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo's flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo's flags: %w", err)
	}
	return nil
}

// isMountPoint: dir is the mount point of some entry of /proc/self/mountinfo.
func isMountPoint(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	return hasMountPoint(f, dir)
}

func hasMountPoint(r io.Reader, dir string) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		if f := strings.Fields(sc.Text()); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// finish is PID 1's last act: what escaped the supervised groups is
// killed, the disks synced, and the exit tells LXC the instance stopped.
func finish() {
	_ = unix.Kill(-1, unix.SIGKILL)
	// Reap the killed for up to a second; ECHILD says none are left.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil && err != unix.EINTR {
			break
		}
		if pid == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	unix.Sync()
}
