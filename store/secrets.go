package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Secret config values are sealed with AES-256-GCM before they reach the
// database, so neither the database file, its WAL, nor a backup of it holds
// them in clear. The key lives in its own file beside the database (never in
// it, so never in its backups): losing the key loses the secrets, and a copy
// of the database alone reveals none.

// KeyFileName is the secret key's file in the store's directory.
const KeyFileName = "secrets.key"

// sealedPrefix marks a sealed value; the version lets the format change later.
const sealedPrefix = "sealed:v1:"

// ErrKeyMissing means the database holds sealed secrets but their key is gone.
var ErrKeyMissing = errors.New("the store holds sealed secrets but their key file is missing")

type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts plain, bound to where it is stored (aad): a sealed value
// copied onto another variable does not open.
func (s *sealer) seal(plain, aad string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return sealedPrefix + base64.StdEncoding.EncodeToString(out)
}

func (s *sealer) open(sealed, aad string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, sealedPrefix))
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("sealed value is damaged")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		return "", fmt.Errorf("sealed value does not open with the key in %s (a different key, or damaged)", KeyFileName)
	}
	return string(plain), nil
}

func secretAAD(installationID int64, key string) string {
	return strconv.FormatInt(installationID, 10) + "/" + key
}

// loadKey reads the key file, or makes one (0600) when there is none and
// makeIt is set.
func loadKey(path string, makeIt bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if !makeIt {
			return nil, fmt.Errorf("%w: put %s back (see the README, Backups)", ErrKeyMissing, path)
		}
		key := make([]byte, 32)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("make secret key: %w", err)
		}
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("make secret key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s is not a slipway secret key (64 hex digits)", path)
	}
	return key, nil
}

// openSecrets loads (or on first start makes) the key and seals any secret a
// version before sealing stored in clear.
func (s *Store) openSecrets(ctx context.Context, keyPath string) error {
	var sealed int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM config_vars WHERE secret = 1 AND value LIKE ?`, sealedPrefix+"%").Scan(&sealed); err != nil {
		return err
	}
	key, err := loadKey(keyPath, sealed == 0)
	if err != nil {
		return err
	}
	if s.secrets, err = newSealer(key); err != nil {
		return err
	}
	return s.sealClearSecrets(ctx)
}

// sealClearSecrets seals secret values stored in clear, then rewrites the
// file and empties the WAL so no page keeps the clear text.
func (s *Store) sealClearSecrets(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT installation_id, key, value FROM config_vars WHERE secret = 1 AND value NOT LIKE ?`, sealedPrefix+"%")
	if err != nil {
		return err
	}
	var clear []ConfigVar
	var ids []int64
	for rows.Next() {
		var id int64
		var v ConfigVar
		if err := rows.Scan(&id, &v.Key, &v.Value); err != nil {
			rows.Close()
			return err
		}
		ids, clear = append(ids, id), append(clear, v)
	}
	rows.Close()
	if len(clear) == 0 {
		return rows.Err()
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for i, v := range clear {
			if _, err := tx.ExecContext(ctx, `UPDATE config_vars SET value = ? WHERE installation_id = ? AND key = ?`,
				s.secrets.seal(v.Value, secretAAD(ids[i], v.Key)), ids[i], v.Key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seal secrets: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("seal secrets: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
