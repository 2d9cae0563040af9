package store

import (
	"context"
	"database/sql"
	"time"
)

// HTTPS modes of an installation.
const (
	HTTPSOff      = "off"      // plain HTTP only
	HTTPSOn       = "on"       // HTTPS and plain HTTP
	HTTPSRedirect = "redirect" // HTTPS; plain HTTP is sent there (308)
)

// Domain is a name an installation answers on besides its own host.
type Domain struct {
	Domain         string
	InstallationID int64
	CreatedAt      time.Time
}

// AddDomain gives installation id the domain (canonical: lower case, no
// trailing dot). ErrExists: another installation has it, as a domain or as
// its own host.
func (s *Store) AddDomain(ctx context.Context, id int64, domain string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM installations WHERE host = ?`, domain).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO domains (domain, installation_id, created_at) VALUES (?, ?, ?)`, domain, id, s.stamp())
		return wrapError(err)
	})
}

// RemoveDomain takes domain from installation id. ErrNotFound: it has no
// such domain.
func (s *Store) RemoveDomain(ctx context.Context, id int64, domain string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM domains WHERE domain = ? AND installation_id = ?`, domain, id)
	if err != nil {
		return wrapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Domains lists the domains of installation id, or of every installation
// when id is 0, by name.
func (s *Store) Domains(ctx context.Context, id int64) ([]Domain, error) {
	q, args := `SELECT domain, installation_id, created_at FROM domains`, []any{}
	if id != 0 {
		q += ` WHERE installation_id = ?`
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY domain`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Domain
	for rows.Next() {
		var d Domain
		var created sql.NullString
		if err := rows.Scan(&d.Domain, &d.InstallationID, &created); err != nil {
			return nil, err
		}
		d.CreatedAt = parseTime(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// DomainOwner returns the installation that has domain, as a domain or as
// its own host; ErrNotFound when none has.
func (s *Store) DomainOwner(ctx context.Context, domain string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT installation_id FROM domains WHERE domain = ?
		UNION ALL SELECT id FROM installations WHERE host = ? LIMIT 1`, domain, domain).Scan(&id)
	return id, wrapError(err)
}

// SetHTTPS records how installation id serves HTTPS, and the HSTS max-age
// in seconds (0: no HSTS header).
func (s *Store) SetHTTPS(ctx context.Context, id int64, mode string, hsts int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE installations SET https = ?, hsts = ? WHERE id = ?`, mode, hsts, id)
	return wrapError(err)
}
