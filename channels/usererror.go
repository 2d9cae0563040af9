package channels

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is what sort of failure an error for people is. The edges map it to
// an SSH exit status and an HTTP status; the message travels unchanged.
type Kind int

// Kinds of errors for people.
const (
	KindInternal    Kind = iota // not for people: the edges say something went wrong
	KindInvalid                 // the input is not allowed
	KindNotFound                // no such thing (or one the user may not see)
	KindForbidden               // the user may not do that
	KindConflict                // the thing exists, is in use, or is not in the state asked for
	KindUnavailable             // try again later
)

// HTTPStatus is the status a web handler answers an error of this kind with.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindForbidden:
		return http.StatusForbidden
	case KindConflict:
		return http.StatusConflict
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is an error for people: Msg is the whole line they read, and Err
// the sentinel it is a case of, for errors.Is.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// failf makes an error for people that is a case of sentinel; the message is
// written whole, without the sentinel's own text in front.
func failf(sentinel error, format string, args ...any) error {
	return &Error{Kind: kindOf(sentinel), Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

func kindOf(sentinel error) Kind {
	switch sentinel {
	case ErrInvalidName, ErrUnknownRef, ErrAmbiguousRef:
		return KindInvalid
	case ErrUnknownApp, ErrUnknownEnvironment, ErrUnknownInstallation, ErrNotDeployed, ErrUnknownUser, ErrUnknownKey, ErrUnknownBackup:
		return KindNotFound
	case ErrForbidden:
		return KindForbidden
	case ErrExists, ErrInUse, ErrNotRunning, ErrPinned:
		return KindConflict
	case ErrShuttingDown, ErrExecFailed:
		return KindUnavailable
	}
	return KindInternal
}

// ForPeople returns the kind and the one line a person reads for err, and
// false when err is not meant for people (an internal failure).
func ForPeople(err error) (Kind, string, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind, e.Msg, true
	}
	var me *ManifestError
	if errors.As(err, &me) {
		return KindInvalid, me.Error(), true
	}
	for _, s := range []error{ErrShuttingDown, ErrNotRunning, ErrCancelled} {
		if errors.Is(err, s) {
			return kindOf(s), err.Error(), true
		}
	}
	return KindInternal, "", false
}
