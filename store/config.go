package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ConfigVar is one environment variable of an installation.
type ConfigVar struct {
	Key    string
	Value  string // the real value, for the engine only; see Masked
	Secret bool
}

// Masked is the value as people may see it.
func (v ConfigVar) Masked() string {
	if v.Secret {
		return "********"
	}
	return v.Value
}

// Config returns an installation's variables by key.
func (s *Store) Config(ctx context.Context, installationID int64) ([]ConfigVar, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value, secret FROM config_vars WHERE installation_id = ? ORDER BY key`, installationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ConfigVar
	for rows.Next() {
		var v ConfigVar
		if err := rows.Scan(&v.Key, &v.Value, &v.Secret); err != nil {
			return nil, err
		}
		if v.Secret {
			if v.Value, err = s.secrets.open(v.Value, secretAAD(installationID, v.Key)); err != nil {
				return nil, fmt.Errorf("secret %s: %w", v.Key, err)
			}
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// UpdateConfig sets and unsets variables in one transaction.
func (s *Store) UpdateConfig(ctx context.Context, installationID int64, set []ConfigVar, unset []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.updateConfig(ctx, tx, installationID, set, unset) })
}

func (s *Store) updateConfig(ctx context.Context, tx *sql.Tx, installationID int64, set []ConfigVar, unset []string) error {
	for _, v := range set {
		if v.Secret {
			v.Value = s.secrets.seal(v.Value, secretAAD(installationID, v.Key))
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO config_vars (installation_id, key, value, secret, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (installation_id, key) DO UPDATE SET value = excluded.value, secret = excluded.secret, updated_at = excluded.updated_at`,
			installationID, v.Key, v.Value, v.Secret, s.stamp()); err != nil {
			return err
		}
	}
	for _, k := range unset {
		if _, err := tx.ExecContext(ctx, `DELETE FROM config_vars WHERE installation_id = ? AND key = ?`, installationID, k); err != nil {
			return err
		}
	}
	return nil
}

// SetMaintenance records maintenance mode; an empty message with on=false clears it.
func (s *Store) SetMaintenance(ctx context.Context, installationID int64, on bool, message string) error {
	var v any
	if on {
		v = message
	}
	_, err := s.db.ExecContext(ctx, `UPDATE installations SET maintenance = ? WHERE id = ?`, v, installationID)
	return wrapError(err)
}

// DeleteInstallation removes an installation; its operations keep its names.
func (s *Store) DeleteInstallation(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM installations WHERE id = ?`, id)
	return wrapError(err)
}
