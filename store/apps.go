package store

import (
	"context"
	"database/sql"
	"time"
)

// App is one git repository pushed to slipway.
type App struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Environment groups installations under one access list.
type Environment struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// CreateApp adds an app.
func (s *Store) CreateApp(ctx context.Context, name string) (App, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO apps (name, created_at) VALUES (?, ?)`, name, s.stamp())
	if err != nil {
		return App{}, wrapError(err)
	}
	id, _ := res.LastInsertId()
	return App{ID: id, Name: name, CreatedAt: s.now().UTC()}, nil
}

// AppByName returns an app.
func (s *Store) AppByName(ctx context.Context, name string) (App, error) {
	var a App
	var created sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM apps WHERE name = ?`, name).Scan(&a.ID, &a.Name, &created)
	a.CreatedAt = parseTime(created)
	return a, wrapError(err)
}

// Apps lists apps by name.
func (s *Store) Apps(ctx context.Context) ([]App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []App
	for rows.Next() {
		var a App
		var created sql.NullString
		if err := rows.Scan(&a.ID, &a.Name, &created); err != nil {
			return nil, err
		}
		a.CreatedAt = parseTime(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// CreateEnvironment adds an environment.
func (s *Store) CreateEnvironment(ctx context.Context, name string) (Environment, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO environments (name, created_at) VALUES (?, ?)`, name, s.stamp())
	if err != nil {
		return Environment{}, wrapError(err)
	}
	id, _ := res.LastInsertId()
	return Environment{ID: id, Name: name, CreatedAt: s.now().UTC()}, nil
}

// EnvironmentByName returns an environment.
func (s *Store) EnvironmentByName(ctx context.Context, name string) (Environment, error) {
	var e Environment
	var created sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM environments WHERE name = ?`, name).Scan(&e.ID, &e.Name, &created)
	e.CreatedAt = parseTime(created)
	return e, wrapError(err)
}

// Environments lists environments by name.
func (s *Store) Environments(ctx context.Context) ([]Environment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM environments ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Environment
	for rows.Next() {
		var e Environment
		var created sql.NullString
		if err := rows.Scan(&e.ID, &e.Name, &created); err != nil {
			return nil, err
		}
		e.CreatedAt = parseTime(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// DeleteApp removes an app that has no installations left.
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM apps WHERE name = ?`, name)
	return deleted(res, err)
}

// DeleteEnvironment removes an environment that has no installations left,
// with its grants. Its operations and reports keep its name.
func (s *Store) DeleteEnvironment(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM environments WHERE name = ?`, name)
	return deleted(res, err)
}

func deleted(res sql.Result, err error) error {
	if err != nil {
		return wrapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
