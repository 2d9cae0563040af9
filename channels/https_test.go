package channels

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/certs"
	"github.com/slipway-dev/slipway/channels/proxy/testcert"
	"github.com/slipway-dev/slipway/store"
)

// fakeIssuer signs what it is asked for with a test CA, certificates that
// are due for renewal at once, or fails with err.
type fakeIssuer struct {
	ca     *testcert.CA
	dir    *certs.Dir
	err    error
	orders []string
}

func (f *fakeIssuer) Obtain(_ context.Context, domain string, log io.Writer) (certs.Info, error) {
	f.orders = append(f.orders, domain)
	if f.err != nil {
		return certs.Info{}, f.err
	}
	chain, key, err := f.ca.Issue(time.Now().Add(20*time.Minute), domain) // lived for an hour: two thirds gone
	if err != nil {
		return certs.Info{}, err
	}
	if err := f.dir.Save(domain, chain, key); err != nil {
		return certs.Info{}, err
	}
	io.WriteString(log, "issued\n")
	return f.dir.Load(domain)
}

func (te *testEngine) withHTTPS() *fakeIssuer {
	te.t.Helper()
	path := filepath.Join(te.t.TempDir(), "certs")
	dir, err := certs.OpenDir(path)
	if err != nil {
		te.t.Fatal(err)
	}
	ca, err := testcert.NewCA()
	if err != nil {
		te.t.Fatal(err)
	}
	te.routes.UseCertDir(path)
	f := &fakeIssuer{ca: ca, dir: dir}
	te.cfg.HTTPS = HTTPSConfig{Certs: dir, Issuer: f}
	te.certDir = path
	return f
}

func (te *testEngine) route(host string) (mode string, hsts int) {
	routes, _ := te.routes.Routes(context.Background())
	for _, r := range routes {
		if r.Host == host {
			return r.HTTPS, r.HSTS
		}
	}
	te.t.Fatalf("no route for %s", host)
	return "", 0
}

func TestHTTPSCertificatesAndRenewals(t *testing.T) {
	te := newTestEngine(t, "web")
	issuer := te.withHTTPS()
	ctx := context.Background()
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "one")))

	// Redirect waits for the certificate: until then HTTP serves.
	op := te.wait(mustOp(te.SetHTTPS(ctx, "web", "prod", store.HTTPSRedirect, 600, "alice")))
	if mode, hsts := te.route(inst.Host); op.Status != store.StatusSucceeded || mode != store.HTTPSOn || hsts != 600 {
		t.Fatalf("https redirect before a certificate: %s, route %s %d\n%s", op.Status, mode, hsts, te.log(op.ID))
	}
	op = te.wait(mustOp(te.Renew(ctx, "web", "prod", "alice", false)))
	if mode, _ := te.route(inst.Host); op.Status != store.StatusSucceeded || op.Type != store.OpRenew || mode != store.HTTPSRedirect {
		t.Fatalf("renew: %s, route %s\n%s", op.Status, mode, te.log(op.ID))
	}
	first, err := te.cfg.HTTPS.Certs.Load(inst.Host)
	if err != nil {
		t.Fatal(err)
	}

	// The CA fails: the renewal's operation fails with the reason, the old
	// certificate stays, and the cron job waits out the back-off.
	issuer.err = errors.New("the CA at https://ca.test/dir does not answer: connection refused")
	ops := te.RenewDue(ctx)
	if len(ops) != 1 {
		t.Fatalf("renewals due: %d, want 1", len(ops))
	}
	op = te.wait(ops[0])
	if op.Status != store.StatusFailed || !strings.Contains(op.Reason, "does not answer") || op.User != "slipway" {
		t.Errorf("renewal with the CA down: %+v", op)
	}
	if now, _ := te.cfg.HTTPS.Certs.Load(inst.Host); !now.NotAfter.Equal(first.NotAfter) {
		t.Error("the certificate changed although the renewal failed")
	}
	if mode, _ := te.route(inst.Host); mode != store.HTTPSRedirect {
		t.Errorf("after a failed renewal the route is %s", mode)
	}
	recs, _ := te.store.CertificateRecords(ctx)
	if r := recs[inst.Host]; r.Failures != 1 || time.Until(r.NextAttempt) < 50*time.Minute {
		t.Errorf("record after a failure: %+v", r)
	}
	if ops := te.RenewDue(ctx); len(ops) != 0 {
		t.Errorf("the cron job did not wait out the back-off: %d operations", len(ops))
	}
	// Asked by a person, it goes now; then it works again.
	issuer.err = nil
	op = te.wait(mustOp(te.Renew(ctx, "web", "prod", "alice", false)))
	recs, _ = te.store.CertificateRecords(ctx)
	if op.Status != store.StatusSucceeded || recs[inst.Host].Failures != 0 || recs[inst.Host].LastError != "" {
		t.Errorf("renew after the CA is back: %s %+v", op.Status, recs[inst.Host])
	}

	// An own certificate is served and never renewed; removing its domain
	// removes it.
	te.wait(mustOp(te.AddDomain(ctx, "web", "prod", "own.example.com", "alice")))
	chain, key, _ := issuer.ca.Issue(time.Now().Add(time.Minute), "own.example.com") // due, but not ours to renew
	op = te.wait(mustOp(te.SetOwnCertificate(ctx, "web", "prod", "own.example.com", chain, key, "alice")))
	if op.Status != store.StatusSucceeded || strings.Contains(te.log(op.ID), "PRIVATE KEY") {
		t.Fatalf("certs set: %+v\n%s", op, te.log(op.ID))
	}
	issuer.orders = nil
	te.wait(mustOp(te.Renew(ctx, "web", "prod", "alice", true)))
	if strings.Join(issuer.orders, ",") != inst.Host {
		t.Errorf("a forced renewal ordered %v, want only %s", issuer.orders, inst.Host)
	}
	if _, err := te.SetOwnCertificate(ctx, "web", "prod", "elsewhere.example.com", chain, key, "alice"); err == nil {
		t.Error("a certificate for a name the installation does not answer on was taken")
	}
	te.wait(mustOp(te.RemoveDomain(ctx, "web", "prod", "own.example.com", "alice")))
	if _, err := os.Stat(filepath.Join(te.certDir, "own.example.com.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the removed domain's certificate is still there: %v", err)
	}
	if _, ok := te.CertificateExpiries()[inst.Host]; !ok {
		t.Errorf("no expiry for %s: %v", inst.Host, te.CertificateExpiries())
	}
}
