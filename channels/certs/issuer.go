package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
)

// Responder presents ACME challenge answers where the CA will look for them:
// the daemon implements it over the front proxy's control socket.
type Responder interface {
	// Challenge serves keyAuth at http://DOMAIN/.well-known/acme-challenge/TOKEN
	// (on port 80) for any domain; keyAuth "" removes it.
	Challenge(ctx context.Context, token, keyAuth string) error
	// ALPNChallenge presents certPEM/keyPEM to TLS clients that ask for domain
	// with the "acme-tls/1" protocol (on port 443); empty removes it.
	ALPNChallenge(ctx context.Context, domain string, certPEM, keyPEM []byte) error
}

// Issuer obtains certificates from one ACME CA into Dir.
type Issuer struct {
	Dir *Dir
	// DirectoryURL is the CA's ACME directory, e.g.
	// https://acme-v02.api.letsencrypt.org/directory.
	DirectoryURL string
	// Email is the account's contact, where the CA sends expiry warnings; may be "".
	Email string
	// HTTPClient talks to the CA; nil is a client with the system's roots
	// and a 30-second limit per request.
	HTTPClient *http.Client
	Responder  Responder
}

// Challenge types, in the order Obtain tries them: HTTP-01 through the
// proxy's port 80 works behind most setups; TLS-ALPN-01 needs only port 443.
const (
	http01    = "http-01"
	tlsALPN01 = "tls-alpn-01"
)

// How long one authorization may stay pending before Obtain gives up on it,
// whatever ctx allows: a CA that never decides must not hold the operation.
const authorizationWait = 2 * time.Minute

// Obtain gets a certificate for domain and saves it in Dir with a fresh key:
// it registers the account if this CA has none yet (accepting its terms),
// orders the name, answers HTTP-01 (then TLS-ALPN-01 when HTTP-01 fails and
// the CA offers it), finalises and saves the chain. Each step writes a line to
// log. The error is an *IssueError, one line for a person.
func (i *Issuer) Obtain(ctx context.Context, domain string, log io.Writer) (Info, error) {
	if log == nil {
		log = io.Discard
	}
	name, err := canonical(domain)
	if err != nil {
		return Info{}, &IssueError{Kind: KindRefused, Domain: domain, Reason: err.Error(), Err: err}
	}
	if strings.HasPrefix(name, "*.") {
		return Info{}, &IssueError{Kind: KindRefused, Domain: name, Reason: name +
			": a wildcard certificate needs the DNS-01 challenge, which slipway does not answer; add each name instead"}
	}
	if i.Dir == nil || i.Responder == nil || i.DirectoryURL == "" {
		return Info{}, &IssueError{Domain: name, Reason: "the certificate issuer is not configured (directory, responder and CA URL are needed)"}
	}
	o := &order{Issuer: i, name: name, log: log}
	return o.run(ctx)
}

// order is one Obtain: the client, the name and the log it writes to.
type order struct {
	*Issuer
	name   string
	log    io.Writer
	client *acme.Client
	// failures are the challenges that failed, by type, in the order tried.
	failures []challengeFailure
}

type challengeFailure struct {
	typ string
	err error
}

func (o *order) logf(format string, args ...any) {
	fmt.Fprintf(o.log, format+"\n", args...)
}

func (o *order) run(ctx context.Context) (Info, error) {
	key, err := o.Dir.accountKey()
	if err != nil {
		return Info{}, &IssueError{Domain: o.name, Reason: "the ACME account key cannot be read or made: " + err.Error(), Err: err}
	}
	httpClient := o.HTTPClient
	if httpClient == nil {
		// A CA that accepts the connection and never answers must not
		// hold the operation until its context ends.
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	o.client = &acme.Client{
		Key:          key,
		DirectoryURL: o.DirectoryURL,
		HTTPClient:   httpClient,
		RetryBackoff: retryBackoff,
		UserAgent:    "slipway",
	}
	o.logf("ordering a certificate for %s from %s", o.name, o.DirectoryURL)
	if _, err := o.client.Discover(ctx); err != nil {
		return Info{}, o.caError(err)
	}
	if err := o.account(ctx); err != nil {
		return Info{}, err
	}

	ord, err := o.authorize(ctx)
	if err != nil {
		return Info{}, err
	}
	o.logf("authorized")

	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Info{}, &IssueError{Domain: o.name, Reason: "making the certificate's key: " + err.Error(), Err: err}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{o.name}}, certKey)
	if err != nil {
		return Info{}, &IssueError{Domain: o.name, Reason: "making the certificate request: " + err.Error(), Err: err}
	}
	der, _, err := o.client.CreateOrderCert(ctx, ord.FinalizeURL, csr, true)
	if err != nil {
		return Info{}, o.caError(err)
	}
	var chainPEM []byte
	for _, c := range der {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(certKey)
	if err != nil {
		return Info{}, &IssueError{Domain: o.name, Reason: "encoding the certificate's key: " + err.Error(), Err: err}
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := o.Dir.Save(o.name, chainPEM, keyPEM); err != nil {
		return Info{}, &IssueError{Domain: o.name, Reason: "the CA's certificate was not saved: " + err.Error(), Err: err}
	}
	info, err := o.Dir.Load(o.name)
	if err != nil {
		return Info{}, &IssueError{Domain: o.name, Reason: "the saved certificate cannot be read back: " + err.Error(), Err: err}
	}
	o.logf("issued, valid until %s", info.NotAfter.Format(time.DateOnly))
	return info, nil
}

// account points the client at this CA's account, registering one if the
// directory has none recorded for it.
func (o *order) account(ctx context.Context) error {
	url, err := o.Dir.accountURL(o.DirectoryURL)
	if err != nil {
		return &IssueError{Domain: o.name, Reason: "the ACME account list cannot be read: " + err.Error(), Err: err}
	}
	if url != "" {
		o.client.KID = acme.KeyID(url)
		return nil
	}
	return o.register(ctx)
}

func (o *order) register(ctx context.Context) error {
	o.client.KID = ""
	acct := &acme.Account{}
	if o.Email != "" {
		acct.Contact = []string{"mailto:" + o.Email}
	}
	var terms string
	if dir, err := o.client.Discover(ctx); err == nil && dir.Terms != "" {
		terms = " (accepting its terms of service, " + dir.Terms + ")"
	}
	o.logf("registering an account with the CA%s", terms)
	_, err := o.client.Register(ctx, acct, acme.AcceptTOS)
	if err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return o.caError(err)
	}
	// Register records the account URL in KID either way.
	if err := o.Dir.setAccountURL(o.DirectoryURL, string(o.client.KID)); err != nil {
		return &IssueError{Domain: o.name, Reason: "the ACME account was registered but not recorded: " + err.Error(), Err: err}
	}
	return nil
}

// authorize orders the name and proves control of it, one challenge type per
// order: a failed challenge makes its authorization invalid for good, so the
// next type needs a new order.
func (o *order) authorize(ctx context.Context) (*acme.Order, error) {
	reRegistered := false
	for _, typ := range []string{http01, tlsALPN01} {
		ord, err := o.client.AuthorizeOrder(ctx, acme.DomainIDs(o.name))
		if isProblem(err, "accountDoesNotExist") && !reRegistered {
			// The CA forgot the recorded account (a test CA restarted, an
			// account deactivated): register this key again, once.
			reRegistered = true
			if err := o.register(ctx); err != nil {
				return nil, err
			}
			ord, err = o.client.AuthorizeOrder(ctx, acme.DomainIDs(o.name))
		}
		if err != nil {
			return nil, o.caError(err)
		}
		offered, failed, err := o.prove(ctx, ord, typ)
		if err != nil {
			return nil, err
		}
		if !offered || failed {
			continue
		}
		ord, err = o.client.WaitOrder(ctx, ord.URI)
		if err != nil {
			return nil, o.caError(err)
		}
		return ord, nil
	}
	return nil, o.challengeError()
}

// prove answers typ for every pending authorization of ord. offered is false
// when the CA does not offer typ; failed when the CA tried and was not
// satisfied (recorded in o.failures); err is for anything else.
func (o *order) prove(ctx context.Context, ord *acme.Order, typ string) (offered, failed bool, err error) {
	for _, u := range ord.AuthzURLs {
		z, err := o.client.GetAuthorization(ctx, u)
		if err != nil {
			return false, false, o.caError(err)
		}
		if z.Status == acme.StatusValid {
			o.logf("already authorized for %s", z.Identifier.Value)
			continue
		}
		var chal *acme.Challenge
		for _, c := range z.Challenges {
			if c.Type == typ {
				chal = c
			}
		}
		if chal == nil {
			return false, false, nil
		}
		o.logf("answering the %s challenge", typ)
		err = o.answer(ctx, z, chal)
		var cf *challengeFailure
		if errors.As(err, &cf) {
			o.failures = append(o.failures, *cf)
			o.logf("the %s challenge failed: %s", typ, problemDetail(cf.err))
			return true, true, nil
		}
		if err != nil {
			return true, false, err
		}
	}
	return true, false, nil
}

func (cf *challengeFailure) Error() string { return cf.typ + ": " + cf.err.Error() }

// answer presents chal's answer, tells the CA to look, waits for its verdict
// and takes the answer down again whatever happened.
func (o *order) answer(ctx context.Context, z *acme.Authorization, chal *acme.Challenge) error {
	// Removal runs even when ctx is cancelled: a stale answer must not stay
	// in the proxy.
	cleanup := func(remove func(context.Context) error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := remove(rctx); err != nil {
			o.logf("could not take down the %s answer: %v", chal.Type, err)
		}
	}
	switch chal.Type {
	case http01:
		keyAuth, err := o.client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return &IssueError{Domain: o.name, Reason: "computing the http-01 answer: " + err.Error(), Err: err}
		}
		defer cleanup(func(ctx context.Context) error { return o.Responder.Challenge(ctx, chal.Token, "") })
		if err := o.Responder.Challenge(ctx, chal.Token, keyAuth); err != nil {
			return &IssueError{Domain: o.name, Reason: "the http-01 answer could not be put in place: " + err.Error(), Err: err}
		}
	case tlsALPN01:
		domain := z.Identifier.Value
		cert, err := o.client.TLSALPN01ChallengeCert(chal.Token, domain)
		if err != nil {
			return &IssueError{Domain: o.name, Reason: "making the tls-alpn-01 certificate: " + err.Error(), Err: err}
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			return &IssueError{Domain: o.name, Reason: "encoding the tls-alpn-01 key: " + err.Error(), Err: err}
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
		defer cleanup(func(ctx context.Context) error { return o.Responder.ALPNChallenge(ctx, domain, nil, nil) })
		if err := o.Responder.ALPNChallenge(ctx, domain, certPEM, keyPEM); err != nil {
			return &IssueError{Domain: o.name, Reason: "the tls-alpn-01 answer could not be put in place: " + err.Error(), Err: err}
		}
	}
	if _, err := o.client.Accept(ctx, chal); err != nil {
		return o.caError(err)
	}
	return o.waitAuthorization(ctx, z.URI, chal.Type)
}

// waitAuthorization polls the authorization until the CA decides. It polls
// faster than acme.Client.WaitAuthorization's fixed second, since the CA
// usually decides within a few hundred milliseconds.
func (o *order) waitAuthorization(parent context.Context, url, typ string) error {
	ctx, cancel := context.WithTimeout(parent, authorizationWait)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		z, err := o.client.GetAuthorization(ctx, url)
		if err != nil {
			return o.caError(err)
		}
		switch z.Status {
		case acme.StatusValid:
			return nil
		case acme.StatusInvalid, acme.StatusDeactivated, acme.StatusExpired, acme.StatusRevoked:
			var cause error = fmt.Errorf("the authorization is %s", z.Status)
			for _, c := range z.Challenges {
				if c.Type == typ && c.Error != nil {
					cause = c.Error
				}
			}
			return &challengeFailure{typ: typ, err: cause}
		}
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				return &IssueError{Kind: KindCAUnreachable, Domain: o.name, Err: ctx.Err(), Reason: fmt.Sprintf(
					"the CA at %s did not decide on the %s challenge for %s within %v", o.DirectoryURL, typ, o.name, authorizationWait)}
			}
			return o.caError(parent.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// retryBackoff is the acme.Client's retry policy. A rate limit is not waited
// out inside an operation: the daemon reschedules (RetryAfter). A bad nonce
// needs only a new nonce; server errors get a few short tries.
func retryBackoff(n int, r *http.Request, res *http.Response) time.Duration {
	switch {
	case res.StatusCode == http.StatusTooManyRequests, n > 3:
		return 0
	case res.StatusCode == http.StatusBadRequest:
		return 10 * time.Millisecond
	default:
		return time.Duration(n) * 250 * time.Millisecond
	}
}
