package database

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Manifest is what a dump holds, recorded when it was made: its bytes
// (size, SHA-256) and, for every table, its rows (count, checksum) as the
// dump's own snapshot saw them.
type Manifest struct {
	Database string    `json:"database"`
	Created  time.Time `json:"created"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Tables   []Table   `json:"tables"`
}

// Table is one table's rows: Name is schema-qualified and quoted as
// Postgres's format('%I.%I') writes it.
type Table struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
	Sum  string `json:"sum"`
}

// rowSettings fix how a row prints as text, so the same rows give the same
// checksum in the live server and in the scratch one, whatever either
// session would default to (timestamptz prints in the session's TimeZone).
const rowSettings = `SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
SET bytea_output = 'hex';
`

// tablesSQL makes, with \gexec, one query per ordinary table (partitions
// included, their parents not: those have no rows of their own), outside
// the system schemas and not an extension's (CREATE EXTENSION fills those
// again, pg_dump leaves their rows out). Each prints one JSON line.
//
// The checksum is order-independent: the rows' md5s, each cut into two
// 64-bit halves, summed (as numeric, which does not overflow). No sort, no
// string as large as the table (string_agg hits 1 GB on a big one), one
// pass. A sum, not an XOR, so two equal rows do not cancel out. It finds
// rows changed, lost, duplicated or moved between tables; it is not meant
// to resist someone forging rows to match, which the dump's SHA-256 (kept
// apart from the dump) is for.
const tablesSQL = `SELECT format($q$SELECT json_build_object('name', %L, 'rows', count(*), 'sum', coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0) || ':' || coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)) FROM (SELECT md5(t::text) AS h FROM %I.%I AS t) AS r$q$,
	format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
	AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
	AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname \gexec`

// parseTables reads tablesSQL's lines.
func parseTables(out []string) ([]Table, error) {
	tables := []Table{}
	for _, l := range out {
		var t Table
		if err := json.Unmarshal([]byte(l), &t); err != nil || t.Name == "" {
			return nil, fmt.Errorf("%w: unexpected checksum line %q", ErrServer, cut(l))
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// compareTables says exactly which table differs between what the
// manifest recorded and what a restore holds (all of them, in order).
func compareTables(want, got []Table) error {
	have := map[string]Table{}
	for _, t := range got {
		have[t.Name] = t
	}
	var diffs []string
	for _, w := range want {
		g, ok := have[w.Name]
		delete(have, w.Name)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("table %s is missing (%d rows at dump time)", w.Name, w.Rows))
		case g.Rows != w.Rows:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows, %d at dump time", w.Name, g.Rows, w.Rows))
		case g.Sum != w.Sum:
			diffs = append(diffs, fmt.Sprintf("table %s has other rows than at dump time (same count, %d; checksum %s, recorded %s)", w.Name, g.Rows, g.Sum, w.Sum))
		}
	}
	for _, g := range got {
		if _, extra := have[g.Name]; extra {
			diffs = append(diffs, fmt.Sprintf("table %s (%d rows) was not there at dump time", g.Name, g.Rows))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(diffs, "; "))
}
