// Package sysarchive writes, verifies and restores the archive of a whole
// slipway installation: what a new host needs to take over from a lost one.
//
// The archive is a gzipped tar whose members are paths relative to the data
// directory: the store (a consistent copy, made by the caller with VACUUM
// INTO), the key files (the sealing key, the SSH host key, the certificates) and one
// git bundle per app repository (repos/APP.git.bundle). A manifest.json comes
// last and holds every member's SHA-256. Verifying an archive is restoring it
// into a scratch directory: the store must pass integrity_check and every
// bundle must fetch into a fresh repository that passes git fsck.
package sysarchive

import (
	"errors"
	"time"
)

// Layout says where a data directory keeps what the archive holds, relative
// to the data directory.
type Layout struct {
	Store string   // the SQLite store: slipway.db
	Repos string   // the directory of bare repositories APP.git: repos
	Keys  []string // key files, and directories of them ending in "/": the sealing key, the SSH host key, certs/
}

// Summary is what Write wrote.
type Summary struct {
	Size   int64
	SHA256 string
	Keys   []string // key files archived (a missing one is skipped)
	Repos  []string // app names
}

// Contents is what a verified archive holds.
type Contents struct {
	Created       time.Time
	SchemaVersion int
	Keys          []string
	Repos         []string
}

// manifestName is the last member: the table of contents and checksums.
const manifestName = "manifest.json"

// bundleSuffix ends the member of an app's repository: repos/APP.git.bundle.
const bundleSuffix = ".bundle"

const format = 1

type manifest struct {
	Format   int               `json:"format"`
	Created  time.Time         `json:"created"`
	Store    string            `json:"store"`
	ReposDir string            `json:"repos_dir"`
	Keys     []string          `json:"keys"`
	Repos    map[string]string `json:"repos"` // app -> its bundle member, "" for a repository with no refs yet
	Files    map[string]string `json:"files"` // member -> SHA-256
}

var (
	// ErrHasStore means the data directory a restore was given already holds a store.
	ErrHasStore = errors.New("already holds a slipway store")
	// ErrChecksum means an archive does not match its recorded SHA-256.
	ErrChecksum = errors.New("does not match its SHA-256")
	// ErrDamaged means an archive's contents do not check out.
	ErrDamaged = errors.New("damaged archive")
)
