package store

import (
	"context"
	"database/sql"
	"time"
)

// Report is one environment's activity report for one ISO week.
type Report struct {
	ID          int64
	Environment string
	Week        string // 2026-W47
	Rows        int
	CSV         []byte
	OperationID int64
	CreatedAt   time.Time
}

// SaveReport stores (or replaces) a week's report.
func (s *Store) SaveReport(ctx context.Context, r Report) error {
	var op any
	if r.OperationID != 0 {
		op = r.OperationID
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO reports (environment, week, rows, csv, operation_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (environment, week) DO UPDATE SET rows = excluded.rows, csv = excluded.csv,
			operation_id = excluded.operation_id, created_at = excluded.created_at`,
		r.Environment, r.Week, r.Rows, r.CSV, op, s.stamp())
	return wrapError(err)
}

// Reports lists an environment's reports, newest week first, without their CSV.
func (s *Store) Reports(ctx context.Context, env string) ([]Report, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, environment, week, rows, coalesce(operation_id, 0), created_at FROM reports WHERE environment = ? ORDER BY week DESC`, env)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		var r Report
		var created sql.NullString
		if err := rows.Scan(&r.ID, &r.Environment, &r.Week, &r.Rows, &r.OperationID, &created); err != nil {
			return nil, err
		}
		r.CreatedAt = parseTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReportByWeek returns one report with its CSV.
func (s *Store) ReportByWeek(ctx context.Context, env, week string) (Report, error) {
	var r Report
	var created sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT id, environment, week, rows, csv, coalesce(operation_id, 0), created_at FROM reports WHERE environment = ? AND week = ?`, env, week).
		Scan(&r.ID, &r.Environment, &r.Week, &r.Rows, &r.CSV, &r.OperationID, &created)
	r.CreatedAt = parseTime(created)
	return r, wrapError(err)
}
