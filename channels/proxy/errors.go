package proxy

import "errors"

// dialError marks a failure to connect to an upstream: nothing of the request has been
// written, so it is safe to send the request again elsewhere.
type dialError struct {
	upstream string
	err      error
}

func (e *dialError) Error() string { return "dial upstream " + e.upstream + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}
