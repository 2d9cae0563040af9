package channels

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

// labelRule is one label of a host name (RFC 1123), punycode included.
var labelRule = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckDomain returns domain as slipway keeps it (lower case, no trailing
// dot), or a one-line reason it cannot be an installation's domain.
func CheckDomain(domain string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	switch {
	case d == "":
		return "", failf(ErrInvalidName, "the domain is empty")
	case len(d) > 253:
		return "", failf(ErrInvalidName, "the domain is %d characters long; DNS allows 253", len(d))
	case strings.HasPrefix(d, "*."):
		return "", failf(ErrInvalidName, "%s: a wildcard cannot be a domain; add each name (a wildcard certificate of your own can cover them: certs set)", domain)
	case isIP(d):
		return "", failf(ErrInvalidName, "%s is an address, not a domain name", domain)
	case !strings.Contains(d, "."):
		return "", failf(ErrInvalidName, "%s: a domain has at least two labels, like www.example.com", domain)
	}
	for _, label := range strings.Split(d, ".") {
		if !labelRule.MatchString(label) {
			return "", failf(ErrInvalidName, "%s: %q is not a DNS label (letters, digits and inner dashes; write other scripts in punycode, xn--…)", domain, label)
		}
	}
	return d, nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// hostsOf returns every name inst answers on: its own host, then its domains.
func (e *Engine) hostsOf(ctx context.Context, inst store.Installation) ([]string, error) {
	domains, err := e.store.Domains(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	hosts := []string{inst.Host}
	for _, d := range domains {
		hosts = append(hosts, d.Domain)
	}
	return hosts, nil
}

// Domains lists the domains of APP/ENV, its own host first.
func (e *Engine) Domains(ctx context.Context, app, env string) (store.Installation, []string, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return inst, nil, err
	}
	hosts, err := e.hostsOf(ctx, inst)
	return inst, hosts, err
}

// AddDomain makes APP/ENV answer on domain too: the proxy routes it to the
// serving instance at once, with the installation's maintenance page and
// HTTPS. A domain another installation has is refused.
func (e *Engine) AddDomain(ctx context.Context, app, env, domain, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	d, err := CheckDomain(domain)
	if err != nil {
		return store.Operation{}, err
	}
	if d == e.cfg.WebHost {
		return store.Operation{}, failf(ErrExists, "%s is slipway's own web page (--web-host)", d)
	}
	if owner, err := e.store.DomainOwner(ctx, d); err == nil {
		if owner == inst.ID {
			return store.Operation{}, failf(ErrExists, "%s already answers on %s", inst.Resource(), d)
		}
		other, _ := e.store.InstallationByID(ctx, owner)
		return store.Operation{}, failf(ErrExists, "%s is %s's domain; remove it there first", d, other.Resource())
	}
	op := e.newOperation(store.OpDomain, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.store.AddDomain(ctx, inst.ID, d); errors.Is(err, store.ErrExists) {
			return failf(ErrExists, "%s was taken by another installation meanwhile", d)
		} else if err != nil {
			return err
		}
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		if err := e.syncHost(ctx, now, d); err != nil {
			return err
		}
		l.Logf("-----> %s now answers on %s", now.Resource(), d)
		return nil
	})
}

// RemoveDomain stops APP/ENV answering on domain (404 from then on) and
// drops the domain's certificate. The installation's own host stays.
func (e *Engine) RemoveDomain(ctx context.Context, app, env, domain, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	if d == inst.Host {
		return store.Operation{}, failf(ErrInvalidName, "%s is %s's own host, which stays; remove only domains you added", d, inst.Resource())
	}
	if owner, err := e.store.DomainOwner(ctx, d); err != nil || owner != inst.ID {
		return store.Operation{}, failf(ErrUnknownInstallation, "%s has no domain %s", inst.Resource(), d)
	}
	op := e.newOperation(store.OpDomain, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.store.RemoveDomain(ctx, inst.ID, d); err != nil {
			return err
		}
		if _, err := e.router.RemoveHost(ctx, d); err != nil {
			return err
		}
		l.Logf("-----> %s no longer answers on %s", inst.Resource(), d)
		e.dropCertificate(ctx, l, d)
		return nil
	})
}

// newOperation is an operation of type t on inst, by user.
func (e *Engine) newOperation(t store.OpType, inst store.Installation, user string) store.Operation {
	return store.Operation{Type: t, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
}
