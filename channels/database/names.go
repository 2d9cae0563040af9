package database

import (
	"fmt"
	"regexp"
	"strings"
)

// Database is one server, named as slipway's users name it. Everything
// else (instance, volume, role, database, directories) follows from the
// name, so the store needs to keep only it and the credentials.
type Database struct {
	Name string
}

var nameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// Check says whether Name can be a database: lower-case letters, digits and
// '-', starting with a letter, at most 40, not ending in '-' (it becomes an
// Incus instance and volume name and, with '_' for '-', a Postgres role).
func (d Database) Check() error {
	if !nameRe.MatchString(d.Name) || strings.HasSuffix(d.Name, "-") || strings.Contains(d.Name, "--") {
		return fmt.Errorf("%w %q: lower-case letters, digits and '-', starting with a letter, at most 40", ErrBadName, d.Name)
	}
	return nil
}

// Instance is the Incus instance the server runs in.
func (d Database) Instance() string { return "db-" + d.Name }

// Volume is the custom volume holding the server's data directory.
func (d Database) Volume() string { return "db-" + d.Name }

// Role is the Postgres role apps log in as; DBName the database they use.
func (d Database) Role() string { return strings.ReplaceAll(d.Name, "-", "_") }

// DBName is the Postgres database of the apps (named like the role).
func (d Database) DBName() string { return d.Role() }

// SocketDir is where the server's socket directory is mounted, in its own
// instance and in every app instance attached to it: the host of the URL.
func (d Database) SocketDir() string { return SocketRoot + "/" + d.Name }

// device is the name of the disk device that mounts the socket directory.
func (d Database) device() string { return "db-" + d.Name }

// SocketRoot holds the socket directories of attached databases inside
// instances. Not /run: see the package comment.
const SocketRoot = "/slipway/db"

// Labels an instance of this package carries (user.slipway.<key>): never
// "installation", so the engine's reconciliation leaves them alone.
const (
	LabelDatabase = "database" // the server's instance: its name
	LabelScratch  = "scratch"  // a scratch server proving a backup: "database"
)
