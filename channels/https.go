package channels

import (
	"context"
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
