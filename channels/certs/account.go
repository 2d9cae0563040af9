package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The ACME account: one ECDSA P-256 key for every CA, made once, and the
// account URL each CA gave it, so a restart reuses the account instead of
// registering again (Let's Encrypt limits registrations per IP address).
const (
	accountDir      = "acme"
	accountKeyFile  = "account.key"
	accountURLsFile = "accounts.json"
)

// accountKey returns the account key, making it on first use.
func (d *Dir) accountKey() (*ecdsa.PrivateKey, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir := filepath.Join(d.path, accountDir)
	path := filepath.Join(dir, accountKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("%s is not a PEM key", path)
		}
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("saving the ACME account key: %w", err)
	}
	return key, nil
}

// accountURL is the account URL the CA at directoryURL gave, "" if none yet.
func (d *Dir) accountURL(directoryURL string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	urls, err := d.readAccountURLs()
	return urls[directoryURL], err
}

// setAccountURL records (or, with "", forgets) the account at directoryURL.
func (d *Dir) setAccountURL(directoryURL, accountURL string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	urls, err := d.readAccountURLs()
	if err != nil {
		return err
	}
	if accountURL == "" {
		delete(urls, directoryURL)
	} else {
		urls[directoryURL] = accountURL
	}
	b, err := json.MarshalIndent(urls, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.path, accountDir), 0o700); err != nil {
		return err
	}
	return writeFile(filepath.Join(d.path, accountDir, accountURLsFile), append(b, '\n'))
}

// readAccountURLs maps directory URLs to account URLs; d.mu is held.
func (d *Dir) readAccountURLs() (map[string]string, error) {
	urls := map[string]string{}
	b, err := os.ReadFile(filepath.Join(d.path, accountDir, accountURLsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return urls, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &urls); err != nil {
		return nil, fmt.Errorf("%s: %w", accountURLsFile, err)
	}
	return urls, nil
}
