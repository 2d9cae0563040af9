package certs

import (
	"errors"
	"time"
)

var (
	// ErrNotFound: no certificate pair under that name.
	ErrNotFound = errors.New("no certificate for that name")
	// ErrInvalid: a certificate pair that cannot be used (see InvalidError).
	ErrInvalid = errors.New("the certificate cannot be used")
)

// InvalidError says in one line why a certificate pair was refused ("the key
// does not match the certificate"). It is ErrInvalid for errors.Is.
type InvalidError struct {
	Reason string
}

func (e *InvalidError) Error() string        { return e.Reason }
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(reason string) error { return &InvalidError{Reason: reason} }

// Kind says what went wrong while obtaining a certificate, so the daemon can
// choose what to do next without reading the words.
type Kind int

const (
	// KindOther: anything not below (a responder that failed, a full disk).
	KindOther Kind = iota
	// KindCAUnreachable: the CA did not answer or answered with server errors.
	KindCAUnreachable
	// KindRateLimited: the CA refused for now; see RetryAfter.
	KindRateLimited
	// KindChallenge: the CA could not check that this host serves the domain
	// (its DNS points elsewhere, port 80/443 closed or answered by another server).
	KindChallenge
	// KindRefused: the CA refused the request for good (a name it will not
	// issue for, a malformed request, a wildcard this client cannot prove).
	KindRefused
)

func (k Kind) String() string {
	switch k {
	case KindCAUnreachable:
		return "ca-unreachable"
	case KindRateLimited:
		return "rate-limited"
	case KindChallenge:
		return "challenge"
	case KindRefused:
		return "refused"
	default:
		return "other"
	}
}

// IssueError is what Obtain returns: Error is one line for a person, Err the
// detail underneath (an *acme.Error, a network error) for the daemon's own log.
type IssueError struct {
	Kind   Kind
	Domain string
	Reason string
	// RetryAfter is the wait the CA asked for (rate limits); 0 when it gave none.
	RetryAfter time.Duration
	Err        error
}

func (e *IssueError) Error() string { return e.Reason }
func (e *IssueError) Unwrap() error { return e.Err }

// RetryAfter reports whether err is a rate limit from the CA and how long it
// asked to wait (0 when it did not say; use Backoff then).
func RetryAfter(err error) (time.Duration, bool) {
	var ie *IssueError
	if errors.As(err, &ie) && ie.Kind == KindRateLimited {
		return ie.RetryAfter, true
	}
	return 0, false
}
