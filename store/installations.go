package store

import (
	"context"
	"database/sql"
	"time"
)

// Channel kinds: what an installation follows.
const (
	ChannelBranch = "branch"
	ChannelCommit = "commit"
)

// Installation states.
const (
	StateNew           = "new"           // never served
	StateRunning       = "running"       // serving Commit from Instance
	StateDeprovisioned = "deprovisioned" // traffic stopped, instances gone
)

// Installation is one running copy of an app in one environment.
type Installation struct {
	ID          int64
	App         string
	Environment string
	Host        string
	Following   Channel // its channel
	Commit      string  // served now
	Instance    string  // serving now
	State       string
	Maintenance *string        // maintenance message when in maintenance mode
	EnvHash     string         // the environment Instance was built with
	Limits      Limits         // what its instances may use
	HTTPS       string         // HTTPSOff, HTTPSOn or HTTPSRedirect
	HSTS        int            // Strict-Transport-Security max-age in seconds; 0: none
	Members     []Member       // every instance it serves from, Instance first
	Formation   map[string]int // process counts set with scale; a type not in it runs once
	Surge       int            // new instances a rolling deploy starts at a time; 0: all at once
	Health      string         // the served commit's health path; "" before the first deploy
	CreatedAt   time.Time
}

// Resource names the installation as people write it: APP/ENV.
func (i Installation) Resource() string { return i.App + "/" + i.Environment }

// Channel renders the channel as "branch main" or "commit 1a2b3c…".
func (i Installation) Channel() string { return i.Following.String() }

// Follows reports whether the installation deploys pushes to branch: it
// follows that branch and is not deprovisioned.
func (i Installation) Follows(branch string) bool {
	return i.Following == Branch(branch) && i.State != StateDeprovisioned
}

const installationColumns = `i.id, a.name, e.name, i.host, i.channel_kind, i.channel_ref, i.commit_sha, i.instance, i.state, i.maintenance, i.env_hash, i.limit_cpu, i.limit_memory, i.https, i.hsts, i.surge, i.health, i.created_at, ` + membersColumn + `, ` + formationColumn
const installationFrom = ` FROM installations i JOIN apps a ON a.id = i.app_id JOIN environments e ON e.id = i.environment_id `

// CreateInstallation adds an installation of app in env following a channel.
func (s *Store) CreateInstallation(ctx context.Context, app, env, host, channelKind, channelRef string) (Installation, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM domains WHERE domain = ?`, host).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return ErrExists // another installation's domain
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO installations (app_id, environment_id, host, channel_kind, channel_ref, created_at)
			SELECT a.id, e.id, ?, ?, ?, ? FROM apps a, environments e WHERE a.name = ? AND e.name = ?`,
			host, channelKind, channelRef, s.stamp(), app, env)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		id, _ = res.LastInsertId()
		return nil
	})
	if err != nil {
		return Installation{}, wrapError(err)
	}
	return s.InstallationByID(ctx, id)
}

// InstallationByID returns one installation.
func (s *Store) InstallationByID(ctx context.Context, id int64) (Installation, error) {
	return scanInstallation(s.db.QueryRowContext(ctx, `SELECT `+installationColumns+installationFrom+`WHERE i.id = ?`, id))
}

// InstallationByName returns the installation of app in env.
func (s *Store) InstallationByName(ctx context.Context, app, env string) (Installation, error) {
	return scanInstallation(s.db.QueryRowContext(ctx, `SELECT `+installationColumns+installationFrom+`WHERE a.name = ? AND e.name = ?`, app, env))
}

// Installations lists every installation, or only app's when app is not empty.
func (s *Store) Installations(ctx context.Context, app string) ([]Installation, error) {
	q := `SELECT ` + installationColumns + installationFrom
	var args []any
	if app != "" {
		q += `WHERE a.name = ? `
		args = append(args, app)
	}
	rows, err := s.db.QueryContext(ctx, q+`ORDER BY a.name, e.name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Installation
	for rows.Next() {
		inst, err := scanInstallation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	return out, rows.Err()
}

// Swap is what an installation serves once an operation's new instance takes
// the traffic, with what the operation changes at the same moment.
type Swap struct {
	Commit, Instance, State, EnvHash string
	Health                           string         // the new commit's health path
	Members                          []Member       // every instance served from; nil: Instance alone, as web
	Formation                        map[string]int // nil when the counts stay
	Following                        *Channel       // nil when the channel stays
	Set                              []ConfigVar
	Unset                            []string
	Limits                           *Limits // nil when the limits stay
}

// RecordSwap records a swap in one transaction: a crash leaves either the
// installation as it was or all of the swap, never a new commit served under
// the old channel.
func (s *Store) RecordSwap(ctx context.Context, id int64, sw Swap) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE installations SET commit_sha = ?, instance = ?, state = ?, env_hash = ? WHERE id = ?`,
			sw.Commit, sw.Instance, sw.State, sw.EnvHash, id); err != nil {
			return wrapError(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE installations SET health = ? WHERE id = ?`, sw.Health, id); err != nil {
			return wrapError(err)
		}
		if err := s.setMembers(ctx, tx, id, sw.members()); err != nil {
			return err
		}
		if sw.Formation != nil {
			if err := setFormation(ctx, tx, id, sw.Formation); err != nil {
				return err
			}
		}
		if sw.Following != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE installations SET channel_kind = ?, channel_ref = ? WHERE id = ?`, sw.Following.Kind, sw.Following.Ref, id); err != nil {
				return wrapError(err)
			}
		}
		if sw.Limits != nil {
			if err := setLimits(ctx, tx, id, *sw.Limits); err != nil {
				return err
			}
		}
		return s.updateConfig(ctx, tx, id, sw.Set, sw.Unset)
	})
}

// SetServing records what an installation serves now, and the environment
// hash the instance was built with.
func (s *Store) SetServing(ctx context.Context, id int64, commit, instance, state, envHash string) error {
	return s.RecordSwap(ctx, id, Swap{Commit: commit, Instance: instance, State: state, EnvHash: envHash})
}

// SetChannel changes what an installation follows.
func (s *Store) SetChannel(ctx context.Context, id int64, kind, ref string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE installations SET channel_kind = ?, channel_ref = ? WHERE id = ?`, kind, ref, id)
	return wrapError(err)
}

type scanner interface{ Scan(...any) error }

func scanInstallation(row scanner) (Installation, error) {
	var i Installation
	var created, maintenance, members, formation sql.NullString
	err := row.Scan(&i.ID, &i.App, &i.Environment, &i.Host, &i.Following.Kind, &i.Following.Ref, &i.Commit, &i.Instance, &i.State, &maintenance, &i.EnvHash, &i.Limits.CPU, &i.Limits.Memory, &i.HTTPS, &i.HSTS, &i.Surge, &i.Health, &created, &members, &formation)
	if err != nil {
		return Installation{}, wrapError(err)
	}
	i.Members = parseMembers(members.String, i.Instance)
	i.Formation = parseFormation(formation.String)
	if maintenance.Valid {
		i.Maintenance = &maintenance.String
	}
	i.CreatedAt = parseTime(created)
	return i, nil
}
