package container

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/lxc/incus/v6/shared/api"
)

var (
	// ErrNotFound: the instance (or image alias, or project) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnreachable: incusd does not answer on its socket.
	ErrUnreachable = errors.New("incus is not reachable")
	// ErrNotRunning: the instance exists but is stopped, so it has no
	// processes to exec into and no network namespace to dial in.
	ErrNotRunning = errors.New("instance is not running")
	// ErrExists: an instance of that name exists already.
	ErrExists = errors.New("already exists")
	// ErrBadName: a name, label key or environment variable name that Incus
	// or the shell would reject or misread.
	ErrBadName = errors.New("invalid name")
)

// wrap adds context to an error from the Incus client and maps the cases a
// caller acts on to this package's sentinel errors, keeping Incus's own text
// after them for the daemon's log.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnreachable), errors.Is(err, ErrNotRunning), errors.Is(err, ErrBadName), errors.Is(err, ErrExists):
		return fmt.Errorf("%s: %w", what, err)
	case api.StatusErrorCheck(err, 404):
		return fmt.Errorf("%s: %w (%v)", what, ErrNotFound, err)
	case isTransport(err):
		return fmt.Errorf("%s: %w: %v", what, ErrUnreachable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isTransport tells a failure to talk to incusd (socket missing, refused,
// connection reset) from an answer that says no.
func isTransport(err error) bool {
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	// Some client paths flatten the error to text.
	msg := err.Error()
	return strings.Contains(msg, "connect: connection refused") || strings.Contains(msg, "connect: no such file or directory")
}

// isNotRunning recognises Incus's answers for an instance that is stopped
// where a running one is needed (exec, stop).
func isNotRunning(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "not running") || strings.Contains(msg, "already stopped") || strings.Contains(msg, "is stopped")
}

func isAlreadyRunning(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "already running")
}

// isNoImage recognises Incus's answers to a create from an image alias that
// does not exist (6.0 says "Image not provided for instance creation").
func isNoImage(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Image not provided") || strings.Contains(msg, "Failed getting image") || api.StatusErrorCheck(err, 404)
}

// isExists recognises a create that lost to an existing instance of the same
// name. Incus 6.0 says so from its database ("UNIQUE constraint failed"),
// inside the create operation rather than as a 409.
func isExists(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return api.StatusErrorCheck(err, 409) || strings.Contains(msg, "already exists") || strings.Contains(msg, "UNIQUE constraint failed")
}
