package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Member is one instance an installation serves from, and the process type
// it runs: "web" also names the one instance that runs every process when
// the installation is not scaled.
type Member struct {
	Name      string
	Process   string
	StartedAt time.Time
}

// The members and the formation come with each installation, folded into one
// column each, so every reader of an installation gets them in one query.
const (
	membersColumn   = `(SELECT group_concat(name || ' ' || process || ' ' || started_at, char(10)) FROM instances WHERE installation_id = i.id)`
	formationColumn = `(SELECT group_concat(process || '=' || count, ',') FROM formation WHERE installation_id = i.id)`
)

// parseMembers reads membersColumn: primary first, then by process and name.
func parseMembers(text, primary string) []Member {
	var out []Member
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		out = append(out, Member{Name: f[0], Process: f[1], StartedAt: parseTime(sql.NullString{String: f[2], Valid: true})})
	}
	sort.Slice(out, func(a, b int) bool {
		if (out[a].Name == primary) != (out[b].Name == primary) {
			return out[a].Name == primary
		}
		if out[a].Process != out[b].Process {
			return out[a].Process == "web" || out[b].Process != "web" && out[a].Process < out[b].Process
		}
		return out[a].Name < out[b].Name
	})
	return out
}

func parseFormation(text string) map[string]int {
	out := map[string]int{}
	for _, kv := range strings.Split(text, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if n, err := strconv.Atoi(v); ok && err == nil {
			out[k] = n
		}
	}
	return out
}

// members is what a swap serves from.
func (sw Swap) members() []Member {
	if sw.Members != nil || sw.Instance == "" {
		return sw.Members
	}
	return []Member{{Name: sw.Instance, Process: "web"}}
}

// setMembers makes members the installation's instances, keeping the start
// time of those it already had.
func (s *Store) setMembers(ctx context.Context, tx *sql.Tx, id int64, members []Member) error {
	keep := make([]any, 0, len(members)+1)
	keep = append(keep, id)
	marks := make([]string, 0, len(members))
	for _, m := range members {
		keep = append(keep, m.Name)
		marks = append(marks, "?")
	}
	q := `DELETE FROM instances WHERE installation_id = ?`
	if len(marks) > 0 {
		q += ` AND name NOT IN (` + strings.Join(marks, ",") + `)`
	}
	if _, err := tx.ExecContext(ctx, q, keep...); err != nil {
		return wrapError(err)
	}
	for _, m := range members {
		if _, err := tx.ExecContext(ctx, `INSERT INTO instances (name, installation_id, process, started_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET process = excluded.process WHERE installation_id = excluded.installation_id`,
			m.Name, id, m.Process, s.stamp()); err != nil {
			return wrapError(err)
		}
	}
	return nil
}

func setFormation(ctx context.Context, tx *sql.Tx, id int64, counts map[string]int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM formation WHERE installation_id = ?`, id); err != nil {
		return wrapError(err)
	}
	for process, n := range counts {
		if n < 0 {
			return fmt.Errorf("a count cannot be negative: %s=%d", process, n)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO formation (installation_id, process, count) VALUES (?, ?, ?)`, id, process, n); err != nil {
			return wrapError(err)
		}
	}
	return nil
}

// SetFormation stores an installation's process counts and surge (nil: the
// surge stays), for an installation that serves nothing yet: its first
// deploy starts them.
func (s *Store) SetFormation(ctx context.Context, id int64, counts map[string]int, surge *int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if counts != nil {
			if err := setFormation(ctx, tx, id, counts); err != nil {
				return err
			}
		}
		if surge != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE installations SET surge = ? WHERE id = ?`, *surge, id); err != nil {
				return wrapError(err)
			}
		}
		return nil
	})
}
