package hooks

import (
	"strings"
	"testing"
)

func TestSplitPEM(t *testing.T) {
	cert := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	key := "-----BEGIN EC PRIVATE KEY-----\nBBBB\n-----END EC PRIVATE KEY-----\n"
	chain, k, err := splitPEM([]byte(key + cert + cert))
	if err != nil || strings.Count(string(chain), "BEGIN CERTIFICATE") != 2 || !strings.Contains(string(k), "EC PRIVATE KEY") {
		t.Fatalf("key first, two certificates: %q %q %v", chain, k, err)
	}
	for input, want := range map[string]string{
		"":               "no PEM",
		cert:             "no private key",
		key:              "no certificate",
		cert + key + key: "two private keys",
		strings.ReplaceAll(cert, "CERTIFICATE", "CSR") + key: "type CSR",
	} {
		if _, _, err := splitPEM([]byte(input)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", input, err, want)
		}
	}
}
