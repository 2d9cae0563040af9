// Package certs keeps the certificates of installations' domains in a
// directory the front proxy reads, and obtains them from an ACME CA (RFC 8555,
// golang.org/x/crypto/acme). It knows nothing of the daemon, the store or the
// proxy: the daemon runs Obtain as an operation and answers the challenges
// through a Responder.
package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/backup/atomicfile"
)

// Dir is a directory of certificate pairs, NAME.crt (PEM chain, leaf first)
// and NAME.key (PEM private key), both 0600, NAME the domain in lower case
// with a leading "*." written "_.". The proxy reads this layout.
//
// The ACME account lives under acme/, so it never looks like a pair.
type Dir struct {
	path string
	now  func() time.Time
	// mu serialises writers in this process: two Obtains making the account
	// key at once, a Save racing a Remove of the same name.
	mu sync.Mutex
}

// Info describes a stored certificate; it never carries the key.
type Info struct {
	Name      string // the domain, e.g. "a.example" or "*.a.example"
	Domains   []string
	Issuer    string // the issuer's common name, or its organisation
	NotBefore time.Time
	NotAfter  time.Time
}

// OpenDir makes path (0700) if it is missing and returns it as a Dir.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("certificate directory: %w", err)
	}
	return &Dir{path: path, now: time.Now}, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// FileName is the base name of name's pair, without .crt or .key:
// "*.A.example" → "_.a.example".
func FileName(name string) (string, error) {
	n, err := canonical(name)
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(n, "*."); ok {
		return "_." + rest, nil
	}
	return n, nil
}

// canonical returns name lower-case, without a trailing dot, checked to be a
// host name (optionally "*." and a host name), so it is safe as a file name.
func canonical(name string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	host, _ := strings.CutPrefix(n, "*.")
	if host == "" || len(n) > 253 {
		return "", invalid(fmt.Sprintf("%q is not a domain name", name))
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", invalid(fmt.Sprintf("%q is not a domain name", name))
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return "", invalid(fmt.Sprintf("%q is not a domain name", name))
			}
		}
	}
	return n, nil
}

// Save checks that keyPEM is the key of chainPEM's leaf, that the leaf covers
// name and has not expired, and stores the pair: the key first, then the
// chain, each written whole, so a reader that finds NAME.crt finds its key.
func (d *Dir) Save(name string, chainPEM, keyPEM []byte) error {
	n, err := canonical(name)
	if err != nil {
		return err
	}
	chain, err := parseChain(chainPEM)
	if err != nil {
		return err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return err
	}
	if err := checkPair(n, chain, key, d.now()); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return invalid("the key cannot be stored: " + err.Error())
	}
	var crt bytes.Buffer
	for _, c := range chain {
		pem.Encode(&crt, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	base, _ := FileName(n)

	d.mu.Lock()
	defer d.mu.Unlock()
	if err := writeFile(filepath.Join(d.path, base+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return fmt.Errorf("saving the key of %s: %w", n, err)
	}
	if err := writeFile(filepath.Join(d.path, base+".crt"), crt.Bytes()); err != nil {
		return fmt.Errorf("saving the certificate of %s: %w", n, err)
	}
	return nil
}

func writeFile(path string, b []byte) error {
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Load describes name's stored certificate.
func (d *Dir) Load(name string) (Info, error) {
	base, err := FileName(name)
	if err != nil {
		return Info{}, err
	}
	return d.load(base)
}

func (d *Dir) load(base string) (Info, error) {
	b, err := os.ReadFile(filepath.Join(d.path, base+".crt"))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%s: %w", nameOf(base), ErrNotFound)
	}
	if err != nil {
		return Info{}, err
	}
	chain, err := parseChain(b)
	if err != nil {
		return Info{}, fmt.Errorf("%s.crt: %w", base, err)
	}
	return infoOf(nameOf(base), chain[0]), nil
}

func nameOf(base string) string {
	if rest, ok := strings.CutPrefix(base, "_."); ok {
		return "*." + rest
	}
	return base
}

// List describes every stored pair, sorted by name. A pair that cannot be read
// does not hide the others: they are returned with an error naming it.
func (d *Dir) List() ([]Info, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var infos []Info
	var errs []error
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".crt")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if _, err := canonical(nameOf(base)); err != nil {
			continue // not a name Save writes
		}
		info, err := d.load(base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return infos, errors.Join(errs...)
}

// Remove deletes name's pair: the chain first, so the key never goes while a
// reader could still find the certificate.
func (d *Dir) Remove(name string) error {
	base, err := FileName(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	crtErr := os.Remove(filepath.Join(d.path, base+".crt"))
	keyErr := os.Remove(filepath.Join(d.path, base+".key"))
	switch {
	case errors.Is(crtErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", nameOf(base), ErrNotFound)
	case crtErr != nil && !errors.Is(crtErr, fs.ErrNotExist):
		return crtErr
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return keyErr
	}
	return nil
}

func infoOf(name string, leaf *x509.Certificate) Info {
	issuer := leaf.Issuer.CommonName
	if issuer == "" && len(leaf.Issuer.Organization) > 0 {
		issuer = leaf.Issuer.Organization[0]
	}
	return Info{
		Name:      name,
		Domains:   slices.Clone(leaf.DNSNames),
		Issuer:    issuer,
		NotBefore: leaf.NotBefore.UTC(),
		NotAfter:  leaf.NotAfter.UTC(),
	}
}
