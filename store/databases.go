package store

import (
	"context"
	"database/sql"
	"time"
)

// Database states.
const (
	DatabaseProvisioning  = "provisioning"
	DatabaseRunning       = "running"
	DatabaseFailed        = "failed"
	DatabaseDeprovisioned = "deprovisioned"
)

// Database is a Postgres server slipway runs for an environment.
type Database struct {
	ID          int64
	Name        string
	Environment string
	Type        string
	Version     string
	State       string
	User        string // the apps' role
	Password    string // opened from its seal; never shown
	DBName      string
	Schedule    string // its backups' cron spec; "": the default, "off": none
	CreatedAt   time.Time
}

// Attachment puts a database's URL into an installation's environment.
type Attachment struct {
	Database       string
	InstallationID int64
	Variable       string // DATABASE_URL unless told otherwise
}

func databaseAAD(name string) string { return "database/" + name }

const databaseColumns = `d.id, d.name, e.name, d.type, d.version, d.state, d.db_user, d.db_password, d.db_name, d.backup_schedule, d.created_at`
const databaseFrom = ` FROM databases d JOIN environments e ON e.id = d.environment_id `

// CreateDatabase records a database being provisioned in env.
// ErrExists: the name is taken; ErrNotFound: no such environment.
func (s *Store) CreateDatabase(ctx context.Context, name, env, version string) (Database, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO databases (name, environment_id, version, state, created_at)
		SELECT ?, e.id, ?, ?, ? FROM environments e WHERE e.name = ?`, name, version, DatabaseProvisioning, s.stamp(), env)
	if err != nil {
		return Database{}, wrapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Database{}, ErrNotFound
	}
	return s.DatabaseByName(ctx, name)
}

// SetDatabaseCredentials records the apps' login, the password sealed.
func (s *Store) SetDatabaseCredentials(ctx context.Context, name, user, password, dbName string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE databases SET db_user = ?, db_password = ?, db_name = ? WHERE name = ?`,
		user, s.secrets.seal(password, databaseAAD(name)), dbName, name)
	return wrapError(err)
}

// SetDatabaseState records where a database stands.
func (s *Store) SetDatabaseState(ctx context.Context, name, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE databases SET state = ? WHERE name = ?`, state, name)
	return wrapError(err)
}

// SetDatabaseSchedule records a database's backup schedule ("": default).
func (s *Store) SetDatabaseSchedule(ctx context.Context, name, spec string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE databases SET backup_schedule = ? WHERE name = ?`, spec, name)
	return wrapError(err)
}

// DeleteDatabase forgets a database (its operations stay).
func (s *Store) DeleteDatabase(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM databases WHERE name = ?`, name)
	return wrapError(err)
}

// DatabaseByName returns one database, its password opened.
func (s *Store) DatabaseByName(ctx context.Context, name string) (Database, error) {
	return s.scanDatabase(s.db.QueryRowContext(ctx, `SELECT `+databaseColumns+databaseFrom+`WHERE d.name = ?`, name))
}

// Databases lists every database, by name.
func (s *Store) Databases(ctx context.Context) ([]Database, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+databaseColumns+databaseFrom+`ORDER BY d.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Database
	for rows.Next() {
		d, err := s.scanDatabase(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) scanDatabase(row scanner) (Database, error) {
	var d Database
	var created sql.NullString
	err := row.Scan(&d.ID, &d.Name, &d.Environment, &d.Type, &d.Version, &d.State, &d.User, &d.Password, &d.DBName, &d.Schedule, &created)
	if err != nil {
		return Database{}, wrapError(err)
	}
	d.CreatedAt = parseTime(created)
	if d.Password != "" {
		if d.Password, err = s.secrets.open(d.Password, databaseAAD(d.Name)); err != nil {
			return Database{}, err
		}
	}
	return d, nil
}

// Attach records that installation id gets database's URL in variable.
// ErrExists: the installation has that variable from a database already.
func (s *Store) Attach(ctx context.Context, database string, id int64, variable string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO database_attachments (database_id, installation_id, variable)
		SELECT d.id, ?, ? FROM databases d WHERE d.name = ?`, id, variable, database)
	return wrapError(err)
}

// Detach removes an attachment; ErrNotFound when there is none.
func (s *Store) Detach(ctx context.Context, database string, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM database_attachments WHERE installation_id = ?
		AND database_id = (SELECT id FROM databases WHERE name = ?)`, id, database)
	if err != nil {
		return wrapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Attachments lists the attachments of installation id, or of database
// when id is 0.
func (s *Store) Attachments(ctx context.Context, database string, id int64) ([]Attachment, error) {
	q := `SELECT d.name, a.installation_id, a.variable FROM database_attachments a JOIN databases d ON d.id = a.database_id WHERE `
	var args []any
	if id != 0 {
		q, args = q+`a.installation_id = ?`, []any{id}
	} else {
		q, args = q+`d.name = ?`, []any{database}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY d.name, a.variable`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.Database, &a.InstallationID, &a.Variable); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
