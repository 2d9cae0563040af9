package database

import "errors"

// Errors of this package; callers add the database's name and translate
// them into the user's one line.
var (
	// ErrBadName: a database name slipway cannot use for an instance, a
	// volume, a role and a directory at once.
	ErrBadName = errors.New("invalid database name")
	// ErrDamaged: a dump whose bytes are not the ones its manifest
	// recorded (size or SHA-256).
	ErrDamaged = errors.New("the dump is damaged")
	// ErrNotRestored: pg_restore stopped at an error: a dump damaged
	// before its checksum was taken, or one that needs what this server
	// lacks (an extension); the message is pg_restore's own line.
	ErrNotRestored = errors.New("the dump does not restore")
	// ErrMismatch: a restored dump whose tables do not hold the rows its
	// manifest recorded.
	ErrMismatch = errors.New("the restored rows differ from the manifest")
	// ErrServer: Postgres (or a tool of its) failed; the message says how.
	ErrServer = errors.New("postgres failed")
)
