package channels

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestCheckDomain(t *testing.T) {
	for in, want := range map[string]string{
		"WWW.Example.COM.":      "www.example.com",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
		"a-b.c":                 "a-b.c",
	} {
		if got, err := CheckDomain(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for in, reason := range map[string]string{
		"":                              "empty",
		"*.example.com":                 "wildcard",
		"localhost":                     "two labels",
		"127.0.0.1":                     "an address",
		"[::1]":                         "an address",
		"-a.example.com":                "not a DNS label",
		"a_b.example.com":               "not a DNS label",
		"bücher.example":                "punycode",
		"a..b":                          "not a DNS label",
		strings.Repeat("a.", 127) + "b": "253",
		"a.example.com/path":            "not a DNS label",
	} {
		if _, err := CheckDomain(in); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want a reason with %q", in, err, reason)
		}
	}
}

func TestDomainsFollowTheInstallation(t *testing.T) {
	te := newTestEngine(t, "web", "other")
	ctx := context.Background()
	inst := te.install("web")
	te.install("other")
	if op := te.wait(te.push("web", te.commit("web", testManifest, "one"))); op.Status != store.StatusSucceeded {
		t.Fatalf("deploy: %+v\n%s", op, te.log(op.ID))
	}
	op, err := te.AddDomain(ctx, "web", "prod", "WWW.Example.com", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if op = te.wait(op); op.Status != store.StatusSucceeded || op.Type != store.OpDomain {
		t.Fatalf("domains add: %+v\n%s", op, te.log(op.ID))
	}
	if code, body := te.serving("www.example.com"); code != 200 || body != "web-prod-1" {
		t.Fatalf("the new domain: %d %q", code, body)
	}
	// Taken: by another installation, as a domain or as its own host.
	for _, d := range []string{"www.example.com", inst.Host} {
		if _, err := te.AddDomain(ctx, "other", "prod", d, "alice"); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "web/prod") {
			t.Errorf("other takes %s: %v", d, err)
		}
	}
	// A deploy moves every name; maintenance covers every name.
	te.wait(te.push("web", te.commit("web", testManifest, "two")))
	now, _ := te.store.InstallationByID(ctx, inst.ID)
	for _, h := range []string{inst.Host, "www.example.com"} {
		if code, body := te.serving(h); code != 200 || body != now.Instance || body == "web-prod-1" {
			t.Errorf("%s after the second deploy: %d %q, want %s", h, code, body, now.Instance)
		}
	}
	op, _ = te.Maintenance(ctx, "web", "prod", true, "back soon", "alice")
	te.wait(op)
	if code, body := te.serving("www.example.com"); code != 503 || !strings.Contains(body, "back soon") {
		t.Errorf("the domain in maintenance: %d %q", code, body)
	}
	op, _ = te.Maintenance(ctx, "web", "prod", false, "", "alice")
	te.wait(op)
	// The own host stays; a domain goes.
	if _, err := te.RemoveDomain(ctx, "web", "prod", inst.Host, "alice"); err == nil || !strings.Contains(err.Error(), "own host") {
		t.Errorf("removing the own host: %v", err)
	}
	if _, err := te.RemoveDomain(ctx, "other", "prod", "www.example.com", "alice"); err == nil {
		t.Error("other removed web's domain")
	}
	op, err = te.RemoveDomain(ctx, "web", "prod", "www.example.com", "alice")
	if err != nil {
		t.Fatal(err)
	}
	te.wait(op)
	if code, _ := te.serving("www.example.com"); code != 404 {
		t.Errorf("a removed domain answers %d, want 404", code)
	}
	if code, _ := te.serving(inst.Host); code != 200 {
		t.Errorf("the own host after removing the domain: %d", code)
	}
	// Deprovisioning takes every name away.
	te.wait(mustOp(te.AddDomain(ctx, "web", "prod", "shop.example.com", "alice")))
	te.wait(mustOp(te.Deprovision(ctx, "web", "prod", "alice")))
	if code, _ := te.serving("shop.example.com"); code != 404 {
		t.Errorf("a deprovisioned installation's domain answers %d, want 404", code)
	}
	if ds, _ := te.store.Domains(ctx, 0); len(ds) != 0 {
		t.Errorf("domains left after deprovision: %+v", ds)
	}
}

func mustOp(op store.Operation, err error) store.Operation {
	if err != nil {
		panic(err)
	}
	return op
}
