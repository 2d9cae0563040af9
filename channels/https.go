package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/certs"
	"github.com/slipway-dev/slipway/store"
)

// DefaultRenewBefore is how long before expiry a certificate is renewed, as
// Let's Encrypt advises for its 90-day certificates.
const DefaultRenewBefore = 30 * 24 * time.Hour

// CertStore keeps certificate pairs where the proxy reads them (certs.Dir).
type CertStore interface {
	Load(name string) (certs.Info, error)
	Save(name string, chainPEM, keyPEM []byte) error
	Remove(name string) error
	List() ([]certs.Info, error)
}

// CertIssuer obtains a certificate from an ACME CA (certs.Issuer).
type CertIssuer interface {
	Obtain(ctx context.Context, domain string, log io.Writer) (certs.Info, error)
}

// HTTPSConfig is the engine's part of HTTPS.
type HTTPSConfig struct {
	Certs       CertStore     // nil: no HTTPS at all
	Issuer      CertIssuer    // nil: own certificates only
	RenewBefore time.Duration // 0: DefaultRenewBefore
}

func (e *Engine) renewBefore() time.Duration {
	if e.cfg.HTTPS.RenewBefore > 0 {
		return e.cfg.HTTPS.RenewBefore
	}
	return DefaultRenewBefore
}

// certificate returns host's certificate when one is there and valid now.
func (e *Engine) certificate(host string) (certs.Info, bool) {
	if e.cfg.HTTPS.Certs == nil {
		return certs.Info{}, false
	}
	info, err := e.cfg.HTTPS.Certs.Load(host)
	return info, err == nil && time.Now().Before(info.NotAfter)
}

// syncHTTPS tells the proxy how host is served over TLS. Redirect waits for
// a certificate: sending visitors to an HTTPS that fails its handshake
// would take the site down.
func (e *Engine) syncHTTPS(ctx context.Context, inst store.Installation, host string) error {
	mode := inst.HTTPS
	if _, ok := e.certificate(host); !ok && mode == store.HTTPSRedirect {
		mode = store.HTTPSOn
	}
	return e.router.SetHTTPS(ctx, host, mode, inst.HSTS)
}

// CheckHTTPSMode returns a one-line reason when mode is not one of off, on,
// redirect.
func CheckHTTPSMode(mode string) error {
	switch mode {
	case store.HTTPSOff, store.HTTPSOn, store.HTTPSRedirect:
		return nil
	}
	return failf(ErrInvalidName, "https %q: give on, off or redirect", mode)
}

// SetHTTPS changes how APP/ENV serves HTTPS (hsts < 0 keeps the HSTS
// max-age). Names without a certificate get one from the renew operation
// the caller starts next (Renew).
func (e *Engine) SetHTTPS(ctx context.Context, app, env, mode string, hsts int, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	if err := CheckHTTPSMode(mode); err != nil {
		return store.Operation{}, err
	}
	if mode != store.HTTPSOff && e.cfg.HTTPS.Certs == nil {
		return store.Operation{}, failf(ErrNotRunning, "this slipway serves no HTTPS: start it with --https-addr")
	}
	if hsts < 0 {
		hsts = inst.HSTS
	}
	op := e.newOperation(store.OpDomain, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.store.SetHTTPS(ctx, inst.ID, mode, hsts); err != nil {
			return err
		}
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		hosts, err := e.hostsOf(ctx, now)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if err := e.syncHTTPS(ctx, now, h); err != nil {
				return err
			}
			l.Logf("-----> %s: %s", h, httpsLine(now, e.hasCertificate(h)))
		}
		return nil
	})
}

func (e *Engine) hasCertificate(host string) bool {
	_, ok := e.certificate(host)
	return ok
}

// httpsLine says how a host is served, for the operation log.
func httpsLine(inst store.Installation, hasCert bool) string {
	hsts := ""
	if inst.HSTS > 0 {
		hsts = fmt.Sprintf(", HSTS max-age %d", inst.HSTS)
	}
	switch {
	case inst.HTTPS == store.HTTPSOff:
		return "plain HTTP only"
	case !hasCert && inst.HTTPS == store.HTTPSRedirect:
		return "HTTPS once it has a certificate, then HTTP redirects there" + hsts
	case !hasCert:
		return "HTTPS once it has a certificate; HTTP serves meanwhile" + hsts
	case inst.HTTPS == store.HTTPSRedirect:
		return "HTTPS; HTTP redirects there" + hsts
	}
	return "HTTPS and HTTP" + hsts
}

// renewal says which certificates a renew operation gets.
type renewal struct {
	backOff bool // a name whose last attempt failed waits its turn (the cron job)
	force   bool // every name, due or not (certs renew --force)
}

// dueHosts returns the names of inst whose certificate slipway should get
// now: none yet, or due for renewal, or all with force. Own certificates are
// never renewed by slipway.
func (e *Engine) dueHosts(ctx context.Context, inst store.Installation, r renewal) ([]string, error) {
	if inst.HTTPS == store.HTTPSOff || e.cfg.HTTPS.Certs == nil {
		return nil, nil
	}
	hosts, err := e.hostsOf(ctx, inst)
	if err != nil {
		return nil, err
	}
	records, err := e.store.CertificateRecords(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var due []string
	for _, h := range hosts {
		rec := records[h]
		if rec.Source == store.CertOwn {
			continue
		}
		if r.backOff && now.Before(rec.NextAttempt) {
			continue
		}
		info, err := e.cfg.HTTPS.Certs.Load(h)
		if r.force || err != nil || certs.Due(info, now, e.renewBefore()) {
			due = append(due, h)
		}
	}
	return due, nil
}

// ErrNothingDue: every certificate of the installation is current.
var ErrNothingDue = errors.New("nothing due")

// Renew starts a renew operation getting a certificate for each name of
// APP/ENV that has none or is due (with force: every name slipway gets
// certificates for), past any back-off; ErrNothingDue when there is none.
func (e *Engine) Renew(ctx context.Context, app, env, user string, force bool) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	return e.renew(ctx, inst, user, renewal{force: force})
}

func (e *Engine) renew(ctx context.Context, inst store.Installation, user string, r renewal) (store.Operation, error) {
	if e.cfg.HTTPS.Issuer == nil {
		return store.Operation{}, failf(ErrNotRunning, "this slipway gets no certificates: start it with --https-addr and an ACME CA (--acme-url)")
	}
	due, err := e.dueHosts(ctx, inst, r)
	if err != nil {
		return store.Operation{}, err
	}
	if len(due) == 0 {
		return store.Operation{}, ErrNothingDue
	}
	op := e.newOperation(store.OpRenew, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		var failed []string
		for _, h := range due {
			if err := e.obtain(ctx, l, h); err != nil {
				failed = append(failed, err.Error())
			}
		}
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		for _, h := range due {
			if err := e.syncHTTPS(ctx, now, h); err != nil {
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
// certificate due, past its back-off; the cron job calls it.
func (e *Engine) RenewDue(ctx context.Context) []store.Operation {
	if e.cfg.HTTPS.Issuer == nil {
		return nil
	}
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		e.log.Error("Renewals: list installations", "err", err)
		return nil
	}
	var ops []store.Operation
	for _, inst := range insts {
		if inst.State == store.StateDeprovisioned {
			continue
		}
		op, err := e.renew(ctx, inst, "slipway", renewal{backOff: true})
		switch {
		case errors.Is(err, ErrNothingDue):
		case err != nil:
			e.log.Error("Renewal", "installation", inst.Resource(), "err", err)
		default:
			ops = append(ops, op)
		}
	}
	return ops
}

// SetOwnCertificate installs a certificate people give for a name of
// APP/ENV (a Cloudflare origin certificate, a wildcard): slipway serves it
// and never renews it. The key is never shown again.
func (e *Engine) SetOwnCertificate(ctx context.Context, app, env, domain string, chainPEM, keyPEM []byte, user string) (store.Operation, error) {
	inst, hosts, err := e.Domains(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	if e.cfg.HTTPS.Certs == nil {
		return store.Operation{}, failf(ErrNotRunning, "this slipway serves no HTTPS: start it with --https-addr")
	}
	host := strings.TrimSuffix(strings.ToLower(domain), ".")
	if !slices.Contains(hosts, host) {
		return store.Operation{}, failf(ErrInvalidName, "%s does not answer on %s; add it first: domains add %s %s", inst.Resource(), host, inst.Resource(), host)
	}
	op := e.newOperation(store.OpRenew, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.cfg.HTTPS.Certs.Save(host, chainPEM, keyPEM); err != nil {
			return failf(ErrInvalidName, "%s: %v", host, err)
		}
		if err := e.store.RecordCertificate(ctx, host, store.CertOwn); err != nil {
			return err
		}
		if err := e.router.ReloadCerts(ctx); err != nil {
			return err
		}
		info, _ := e.certificate(host)
		l.Logf("-----> %s serves your certificate from %s, valid until %s; slipway does not renew it", host, info.Issuer, info.NotAfter.UTC().Format(time.DateOnly))
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		return e.syncHTTPS(ctx, now, host)
	})
}

// dropCertificate removes host's certificate and its record, once host is
// no one's any more.
func (e *Engine) dropCertificate(ctx context.Context, l *opLog, host string) {
	if e.cfg.HTTPS.Certs == nil {
		return
	}
	if _, err := e.cfg.HTTPS.Certs.Load(host); err == nil {
		if err := e.cfg.HTTPS.Certs.Remove(host); err != nil {
			l.Logf("       Could not remove the certificate of %s: %v", host, err)
		} else {
			l.Logf("       Removed the certificate of %s", host)
		}
	}
	if err := e.store.ForgetCertificate(ctx, host); err != nil {
		e.log.Error("Forget a certificate", "host", host, "err", err)
	}
	if err := e.router.ReloadCerts(ctx); err != nil {
		e.log.Warn("The proxy did not reload its certificates", "err", err)
	}
}

// NameStatus is one name an installation answers on, with its certificate.
type NameStatus struct {
	Domain      string
	Primary     bool        // the installation's own host, APP.ENV.<base domain>
	Certificate *certs.Info // nil: none
	Source      string      // store.CertACME or store.CertOwn; "" with no certificate
	LastError   string      // the newest failed issuance, "" after a success
	NextAttempt time.Time   // after a failure: not tried again before
}

// NameStatuses returns every name of inst, its own host first.
func (e *Engine) NameStatuses(ctx context.Context, inst store.Installation) ([]NameStatus, error) {
	hosts, err := e.hostsOf(ctx, inst)
	if err != nil {
		return nil, err
	}
	records, err := e.store.CertificateRecords(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]NameStatus, 0, len(hosts))
	for i, h := range hosts {
		rec := records[h]
		st := NameStatus{Domain: h, Primary: i == 0, LastError: rec.LastError, NextAttempt: rec.NextAttempt}
		if e.cfg.HTTPS.Certs != nil {
			if info, err := e.cfg.HTTPS.Certs.Load(h); err == nil {
				st.Certificate, st.Source = &info, rec.Source
				if st.Source == "" {
					st.Source = store.CertACME
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// CertificateExpiries returns when each certificate slipway serves
// expires, by domain, for /metrics.
func (e *Engine) CertificateExpiries() map[string]time.Time {
	out := map[string]time.Time{}
	if e.cfg.HTTPS.Certs == nil {
		return out
	}
	infos, err := e.cfg.HTTPS.Certs.List()
	if err != nil {
		return out
	}
	for _, info := range infos {
		out[info.Name] = info.NotAfter
	}
	return out
}
