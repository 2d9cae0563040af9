package store

import (
	"context"
	"database/sql"
	"time"
)

// KeptImage is an Incus image of a commit an installation served, built with
// one environment; launching it skips the build.
type KeptImage struct {
	Fingerprint    string
	InstallationID int64
	Commit         string
	EnvHash        string // hash of the environment it was built with
	KeptAt         time.Time
}

// KeepImage records an image, replacing an older one of the same build.
// It returns the fingerprint it replaced, if any.
func (s *Store) KeepImage(ctx context.Context, k KeptImage) (replaced string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT fingerprint FROM kept_images WHERE installation_id = ? AND commit_sha = ? AND env_hash = ?`,
			k.InstallationID, k.Commit, k.EnvHash).Scan(&replaced)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO kept_images (fingerprint, installation_id, commit_sha, env_hash, kept_at) VALUES (?, ?, ?, ?, ?)`,
			k.Fingerprint, k.InstallationID, k.Commit, k.EnvHash, s.stamp())
		return err
	})
	return replaced, wrapError(err)
}

// KeptImageFor returns the image of commit built with envHash; ErrNotFound when there is none.
func (s *Store) KeptImageFor(ctx context.Context, installationID int64, commit, envHash string) (KeptImage, error) {
	return scanKept(s.db.QueryRowContext(ctx, `SELECT fingerprint, installation_id, commit_sha, env_hash, kept_at FROM kept_images
		WHERE installation_id = ? AND commit_sha = ? AND env_hash = ?`, installationID, commit, envHash))
}

// KeptImages lists kept images, newest first, of one installation or of all (0).
func (s *Store) KeptImages(ctx context.Context, installationID int64) ([]KeptImage, error) {
	q := `SELECT fingerprint, installation_id, commit_sha, env_hash, kept_at FROM kept_images`
	var args []any
	if installationID != 0 {
		q += ` WHERE installation_id = ?`
		args = append(args, installationID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY kept_at DESC, rowid DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeptImage
	for rows.Next() {
		k, err := scanKept(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// ForgetKeptImage drops an image from the kept list.
func (s *Store) ForgetKeptImage(ctx context.Context, fingerprint string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM kept_images WHERE fingerprint = ?`, fingerprint)
	return err
}

// ForgetAllKeptImages drops every image from the kept lists and says how
// many there were. A store restored on a new host lists images of the old
// host's Incus, which the new one does not have.
func (s *Store) ForgetAllKeptImages(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM kept_images`)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func scanKept(row scanner) (KeptImage, error) {
	var k KeptImage
	var kept sql.NullString
	if err := row.Scan(&k.Fingerprint, &k.InstallationID, &k.Commit, &k.EnvHash, &kept); err != nil {
		return KeptImage{}, wrapError(err)
	}
	k.KeptAt = parseTime(kept)
	return k, nil
}
