package certs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
)

// caError turns what the ACME client returned into an *IssueError a person
// can act on.
func (o *order) caError(err error) error {
	var ie *IssueError
	if errors.As(err, &ie) {
		return err
	}
	ca := "the CA at " + o.DirectoryURL
	fail := func(kind Kind, reason string) error {
		return &IssueError{Kind: kind, Domain: o.name, Reason: reason, Err: err}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fail(KindOther, "cancelled while getting a certificate for "+o.name)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(KindCAUnreachable, ca+" did not finish in time")
	}

	var oe *acme.OrderError
	if errors.As(err, &oe) {
		if oe.Problem == nil {
			return fail(KindRefused, fmt.Sprintf("%s gave up on the order for %s (status %s)", ca, o.name, oe.Status))
		}
		err = oe.Problem
	}
	var ae *acme.Error
	if errors.As(err, &ae) {
		if wait, limited := rateLimit(ae); limited {
			reason := fmt.Sprintf("%s is rate limiting this host (%s): ", ca, problemDetail(ae))
			if wait > 0 {
				reason += "slipway tries again after " + roundWait(wait).String()
			} else {
				reason += "slipway tries again later"
			}
			return &IssueError{Kind: KindRateLimited, Domain: o.name, Reason: reason, RetryAfter: wait, Err: err}
		}
		switch {
		case ae.StatusCode >= 500:
			return fail(KindCAUnreachable, fmt.Sprintf("%s does not answer: it replied %d (%s)", ca, ae.StatusCode, problemDetail(ae)))
		case problemIs(ae, "rejectedIdentifier"), problemIs(ae, "unsupportedIdentifier"), problemIs(ae, "caa"):
			return fail(KindRefused, fmt.Sprintf("%s: %s will not issue for this name (%s)", o.name, ca, problemDetail(ae)))
		default:
			return fail(KindRefused, fmt.Sprintf("%s refused: %s", ca, problemDetail(ae)))
		}
	}

	// Anything else is the network or the CA's TLS: say what the transport said.
	detail := err
	var ue *url.Error
	if errors.As(err, &ue) {
		detail = ue.Err
	}
	return fail(KindCAUnreachable, fmt.Sprintf("%s does not answer: %v", ca, detail))
}

// challengeError is Obtain's reason when no challenge satisfied the CA.
func (o *order) challengeError() error {
	if len(o.failures) == 0 {
		return &IssueError{Kind: KindRefused, Domain: o.name, Reason: fmt.Sprintf(
			"%s: the CA at %s offers no challenge slipway answers (http-01 or tls-alpn-01)", o.name, o.DirectoryURL)}
	}
	var over []string
	var errs []error
	http, alpn := false, false
	for _, f := range o.failures {
		errs = append(errs, f.err)
		switch f.typ {
		case http01:
			http = true
			over = append(over, "over HTTP ("+problemDetail(f.err)+")")
		case tlsALPN01:
			alpn = true
			over = append(over, "over TLS-ALPN ("+problemDetail(f.err)+")")
		}
	}
	port := "port 80"
	switch {
	case http && alpn:
		port = "port 80 (or 443)"
	case alpn:
		port = "port 443"
	}
	return &IssueError{
		Kind:   KindChallenge,
		Domain: o.name,
		Reason: fmt.Sprintf("%s: the CA could not reach this host %s: point %s's DNS at this host and open %s",
			o.name, strings.Join(over, " nor "), o.name, port),
		Err: errors.Join(errs...),
	}
}

// rateLimit reports whether ae is a rate limit and the Retry-After it carried.
func rateLimit(ae *acme.Error) (time.Duration, bool) {
	if ae.StatusCode != http.StatusTooManyRequests && !problemIs(ae, "rateLimited") {
		return 0, false
	}
	if ae.Header == nil {
		return 0, true
	}
	v := ae.Header.Get("Retry-After")
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, true
}

// problemIs reports whether ae's type is urn:ietf:params:acme:error:NAME
// (some CAs differ in case or prefix).
func problemIs(ae *acme.Error, name string) bool {
	return strings.HasSuffix(strings.ToLower(ae.ProblemType), ":"+strings.ToLower(name))
}

func isProblem(err error, name string) bool {
	var ae *acme.Error
	return errors.As(err, &ae) && problemIs(ae, name)
}

// problemDetail is the CA's own words about err, on one line.
func problemDetail(err error) string {
	s := err.Error()
	var ae *acme.Error
	if errors.As(err, &ae) && ae.Detail != "" {
		s = ae.Detail
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// roundWait shows a wait to the second (a Retry-After date gives nanoseconds).
func roundWait(d time.Duration) time.Duration { return d.Round(time.Second) }
