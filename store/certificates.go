package store

import (
	"context"
	"database/sql"
	"time"
)

// Certificate sources.
const (
	CertACME = "acme" // obtained and renewed by slipway
	CertOwn  = "own"  // given by a person (certs set), never renewed by slipway
)

// CertificateRecord is what the store keeps of a domain's certificate: where
// it comes from and how its last issuance went. The certificate itself is a
// file in the data directory.
type CertificateRecord struct {
	Domain      string
	Source      string
	Failures    int       // issuances failed in a row
	LastError   string    // the newest failure's reason, "" after a success
	NextAttempt time.Time // zero: whenever due; else not before (CA back-off)
	UpdatedAt   time.Time
}

// RecordCertificate records that domain has a certificate from source now.
func (s *Store) RecordCertificate(ctx context.Context, domain, source string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO certificates (domain, source, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (domain) DO UPDATE SET source = excluded.source, failures = 0, last_error = '',
		next_attempt = NULL, updated_at = excluded.updated_at`, domain, source, s.stamp())
	return wrapError(err)
}

// RecordCertificateFailure records a failed issuance for domain, not to be
// tried again before next.
func (s *Store) RecordCertificateFailure(ctx context.Context, domain, reason string, next time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO certificates (domain, source, failures, last_error, next_attempt, updated_at)
		VALUES (?, 'acme', 1, ?, ?, ?)
		ON CONFLICT (domain) DO UPDATE SET failures = failures + 1, last_error = excluded.last_error,
		next_attempt = excluded.next_attempt, updated_at = excluded.updated_at`,
		domain, reason, formatTime(next), s.stamp())
	return wrapError(err)
}

// ForgetCertificate drops the record of domain's certificate.
func (s *Store) ForgetCertificate(ctx context.Context, domain string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM certificates WHERE domain = ?`, domain)
	return wrapError(err)
}

// CertificateRecords returns every record, by domain.
func (s *Store) CertificateRecords(ctx context.Context) (map[string]CertificateRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain, source, failures, last_error, next_attempt, updated_at FROM certificates`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]CertificateRecord{}
	for rows.Next() {
		var r CertificateRecord
		var next, updated sql.NullString
		if err := rows.Scan(&r.Domain, &r.Source, &r.Failures, &r.LastError, &next, &updated); err != nil {
			return nil, err
		}
		r.NextAttempt, r.UpdatedAt = parseTime(next), parseTime(updated)
		out[r.Domain] = r
	}
	return out, rows.Err()
}
