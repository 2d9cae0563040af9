package store

import (
	"errors"
	"strings"

	"github.com/mattn/go-sqlite3"
)

var (
	// ErrNotFound means the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a record with the same unique name already exists.
	ErrExists = errors.New("already exists")
)

// wrapError turns driver errors into the package's sentinel errors so callers
// never have to know about SQLite.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) {
		return ErrExists
	}
	if strings.Contains(err.Error(), "no rows in result set") {
		return ErrNotFound
	}
	return err
}
