package database

import "errors"

// Errors of this package; callers add the database's name and translate
// them into the user's one line.
var (
	// ErrBadName: a database name slipway cannot use for an instance, a
	// volume, a role and a directory at once.
	ErrBadName = errors.New("invalid database name")
	// ErrDamaged: a dump whose bytes are not the ones its manifest
	// recorded, or that pg_restore cannot read.
	ErrDamaged = errors.New("the dump is damaged")
	// ErrMismatch: a restored dump whose tables do not hold the rows its
	// manifest recorded.
	ErrMismatch = errors.New("the restored rows differ from the manifest")
	// ErrServer: Postgres (or a tool of its) failed; the message says how.
	ErrServer = errors.New("postgres failed")
)
