package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDomainsBelongToOneInstallation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for _, name := range []string{"a", "b"} {
		if _, err := s.CreateApp(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateEnvironment(ctx, "production"); err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateInstallation(ctx, "a", "production", "a.production.test", ChannelBranch, "main")
	if err != nil {
		t.Fatal(err)
	}
	if a.HTTPS != HTTPSOff || a.HSTS != 0 {
		t.Errorf("a new installation: https %q, hsts %d", a.HTTPS, a.HSTS)
	}
	if err := s.AddDomain(ctx, a.ID, "www.a.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInstallation(ctx, "b", "production", "www.a.example", ChannelBranch, "main"); !errors.Is(err, ErrExists) {
		t.Errorf("an installation on a's domain: %v, want ErrExists", err)
	}
	b, err := s.CreateInstallation(ctx, "b", "production", "b.production.test", ChannelBranch, "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"www.a.example", "a.production.test"} {
		if err := s.AddDomain(ctx, b.ID, d); !errors.Is(err, ErrExists) {
			t.Errorf("b takes %s: %v, want ErrExists", d, err)
		}
	}
	if owner, err := s.DomainOwner(ctx, "www.a.example"); err != nil || owner != a.ID {
		t.Errorf("owner of www.a.example: %d %v", owner, err)
	}
	if owner, err := s.DomainOwner(ctx, "b.production.test"); err != nil || owner != b.ID {
		t.Errorf("owner of b's host: %d %v", owner, err)
	}
	if err := s.RemoveDomain(ctx, b.ID, "www.a.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("b removes a's domain: %v", err)
	}
	if err := s.SetHTTPS(ctx, a.ID, HTTPSRedirect, 3600); err != nil {
		t.Fatal(err)
	}
	if a, _ = s.InstallationByID(ctx, a.ID); a.HTTPS != HTTPSRedirect || a.HSTS != 3600 {
		t.Errorf("after SetHTTPS: %q %d", a.HTTPS, a.HSTS)
	}
	if err := s.SetHTTPS(ctx, a.ID, "sometimes", 0); err == nil {
		t.Error("an unknown HTTPS mode was stored")
	}
	if err := s.RemoveDomain(ctx, a.ID, "www.a.example"); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Domains(ctx, 0); len(ds) != 0 {
		t.Errorf("domains left: %+v", ds)
	}
}

func TestCertificateRecordsCountFailures(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	next := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for range 2 {
		if err := s.RecordCertificateFailure(ctx, "a.example", "the CA does not answer", next); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.CertificateRecords(ctx)
	if r := recs["a.example"]; err != nil || r.Failures != 2 || r.LastError != "the CA does not answer" || !r.NextAttempt.Equal(next) {
		t.Fatalf("after two failures: %+v %v", r, err)
	}
	if err := s.RecordCertificate(ctx, "a.example", CertACME); err != nil {
		t.Fatal(err)
	}
	recs, _ = s.CertificateRecords(ctx)
	if r := recs["a.example"]; r.Failures != 0 || r.LastError != "" || !r.NextAttempt.IsZero() || r.Source != CertACME {
		t.Errorf("after a success: %+v", r)
	}
	if err := s.ForgetCertificate(ctx, "a.example"); err != nil {
		t.Fatal(err)
	}
	if recs, _ = s.CertificateRecords(ctx); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
}
