package channels

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/certs"
	"github.com/slipway-dev/slipway/store"
)

// renewal says which certificates a renew operation gets.
type renewal struct {
	backOff bool // a name whose last attempt failed waits its turn (the cron job)
	force   bool // every name, due or not (certs renew --force)
}

// certTarget is what a renew operation gets certificates for: an
// installation's names, or the web page's host.
type certTarget struct {
	op    store.Operation
	hosts []string
	// sync gives the proxy host's HTTPS again once its certificate changed.
	sync func(ctx context.Context, host string) error
}

// installationTarget is inst's names, when it serves HTTPS.
func (e *Engine) installationTarget(ctx context.Context, inst store.Installation, user string) (certTarget, error) {
	t := certTarget{op: e.newOperation(store.OpRenew, inst, user)}
	t.sync = func(ctx context.Context, host string) error {
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		return e.syncHTTPS(ctx, now, host)
	}
	if inst.HTTPS == store.HTTPSOff {
		return t, nil
	}
	var err error
	t.hosts, err = e.hostsOf(ctx, inst)
	return t, err
}

// dueNames returns the hosts whose certificate slipway should get now: none
// yet, or due for renewal, or all with force. Own certificates are never
// renewed by slipway.
func (e *Engine) dueNames(ctx context.Context, hosts []string, r renewal) ([]string, error) {
	if e.cfg.HTTPS.Certs == nil {
		return nil, nil
	}
	records, err := e.store.CertificateRecords(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var due []string
	for _, h := range hosts {
		rec := records[h]
		if rec.Source == store.CertOwn || r.backOff && now.Before(rec.NextAttempt) {
			continue
		}
		info, err := e.cfg.HTTPS.Certs.Load(h)
		if r.force || err != nil || certs.Due(info, now, e.renewBefore()) {
			due = append(due, h)
		}
	}
	return due, nil
}

// GetsCertificates reports whether slipway gets certificates from an ACME
// CA here (not with --acme-url off).
func (e *Engine) GetsCertificates() bool { return e.cfg.HTTPS.Issuer != nil }

// ErrNothingDue: every certificate is current.
var ErrNothingDue = errors.New("nothing due")

// Renew starts a renew operation getting a certificate for each name of
// APP/ENV that has none or is due (with force: every name slipway gets
// certificates for), past any back-off; ErrNothingDue when there is none.
func (e *Engine) Renew(ctx context.Context, app, env, user string, force bool) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	t, err := e.installationTarget(ctx, inst, user)
	if err != nil {
		return store.Operation{}, err
	}
	return e.renew(ctx, t, renewal{force: force})
}

func (e *Engine) renew(ctx context.Context, t certTarget, r renewal) (store.Operation, error) {
	if !e.GetsCertificates() {
		return store.Operation{}, failf(ErrNotRunning, "--acme-url is off: slipway gets no certificates; give one with certs set APP/ENV DOMAIN")
	}
	due, err := e.dueNames(ctx, t.hosts, r)
	if err != nil {
		return store.Operation{}, err
	}
	if len(due) == 0 {
		return store.Operation{}, ErrNothingDue
	}
	return e.submit(ctx, t.op, func(ctx context.Context, l *opLog) error {
		var failed []string
		for _, h := range due {
			if err := e.obtain(ctx, l, h); err != nil {
				failed = append(failed, err.Error())
			}
		}
		for _, h := range due {
			if err := t.sync(ctx, h); err != nil {
				return err
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("%d of %d certificates not obtained: %s", len(failed), len(due), strings.Join(failed, "; "))
		}
		return nil
	})
}

// obtain gets host's certificate and has the proxy serve it; a failure is
// recorded with the time to try again, and the old certificate keeps serving.
func (e *Engine) obtain(ctx context.Context, l *opLog, host string) error {
	l.Logf("-----> Getting a certificate for %s", host)
	info, err := e.cfg.HTTPS.Issuer.Obtain(ctx, host, l)
	if err != nil {
		return e.recordFailure(ctx, l, host, err)
	}
	if err := e.store.RecordCertificate(ctx, host, store.CertACME); err != nil {
		return err
	}
	if err := e.router.ReloadCerts(ctx); err != nil {
		return fmt.Errorf("%s: the proxy did not load the new certificate: %w", host, err)
	}
	l.Logf("-----> %s serves a certificate from %s, valid until %s", host, info.Issuer, info.NotAfter.UTC().Format(time.DateOnly))
	return nil
}

func (e *Engine) recordFailure(ctx context.Context, l *opLog, host string, cause error) error {
	records, _ := e.store.CertificateRecords(ctx)
	wait := certs.Backoff(records[host].Failures + 1)
	if after, ok := certs.RetryAfter(cause); ok && after > wait {
		wait = after
	}
	next := time.Now().Add(wait).Truncate(time.Second)
	if err := e.store.RecordCertificateFailure(ctx, host, cause.Error(), next); err != nil {
		e.log.Error("Record a certificate failure", "host", host, "err", err)
	}
	l.Logf("       %v", cause)
	if old, ok := e.certificate(host); ok {
		l.Logf("       The certificate valid until %s keeps serving", old.NotAfter.UTC().Format(time.DateOnly))
	}
	l.Logf("       The next try is after %s", next.UTC().Format(time.RFC3339))
	return fmt.Errorf("%s: %v", host, cause)
}

// RenewDue starts a renew operation for every installation with a
// certificate due, past its back-off, and for the web page's host; the cron
// job calls it.
func (e *Engine) RenewDue(ctx context.Context) []store.Operation {
	if e.cfg.HTTPS.Issuer == nil {
		return nil
	}
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		e.log.Error("Renewals: list installations", "err", err)
		return nil
	}
	var targets []certTarget
	for _, inst := range insts {
		if inst.State == store.StateDeprovisioned {
			continue
		}
		t, err := e.installationTarget(ctx, inst, "slipway")
		if err != nil {
			e.log.Error("Renewal", "installation", inst.Resource(), "err", err)
			continue
		}
		targets = append(targets, t)
	}
	if t, ok := e.webTarget("slipway"); ok {
		targets = append(targets, t)
	}
	var ops []store.Operation
	for _, t := range targets {
		op, err := e.renew(ctx, t, renewal{backOff: true})
		switch {
		case errors.Is(err, ErrNothingDue):
		case err != nil:
			e.log.Error("Renewal", "hosts", t.hosts, "err", err)
		default:
			ops = append(ops, op)
		}
	}
	return ops
}
