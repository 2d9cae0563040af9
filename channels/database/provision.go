package database

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/revert"
)

// Provision makes db's server: its socket directory, its volume (one kept
// from an earlier server of that name is used as it is: initdb runs only on
// an empty one), its instance, Postgres started, and the apps' role and
// database with a new password, which only the returned Credentials hold.
// A failure undoes what it made.
func (m *Manager) Provision(ctx context.Context, db Database) (creds Credentials, err error) {
	if err := db.Check(); err != nil {
		return Credentials{}, err
	}
	var r revert.Reverter
	defer func() {
		if err != nil {
			if rerr := r.Fail(); rerr != nil {
				m.log.Warn("Undo a failed provision", "database", db.Name, "err", rerr)
			}
		}
	}()
	start := time.Now()
	if err := m.makeSocketDir(db); err != nil {
		return Credentials{}, fmt.Errorf("provision %s: socket directory: %w", db.Name, err)
	}
	if err := m.createVolume(ctx, db, &r); err != nil {
		return Credentials{}, fmt.Errorf("provision %s: %w", db.Name, err)
	}
	devices, err := m.serverDevices(db)
	if err != nil {
		return Credentials{}, fmt.Errorf("provision %s: %w", db.Name, err)
	}
	if err := m.rt.LaunchWithDevices(ctx, db.Instance(), m.image, map[string]string{LabelDatabase: db.Name}, devices); err != nil {
		return Credentials{}, fmt.Errorf("provision %s: %w", db.Name, err)
	}
	r.Add(func() error { return m.rt.Delete(context.WithoutCancel(ctx), db.Instance()) })
	if err := m.start(ctx, db); err != nil {
		return Credentials{}, fmt.Errorf("provision %s: %w", db.Name, err)
	}
	creds = Credentials{User: db.Role(), Password: newPassword(), Database: db.DBName()}
	if err := m.ensureRole(ctx, db, creds); err != nil {
		return Credentials{}, fmt.Errorf("provision %s: %w", db.Name, err)
	}
	r.Success()
	m.log.Info("Provisioned database", "database", db.Name, "instance", db.Instance(), "took", time.Since(start).Round(time.Millisecond))
	return creds, nil
}

// createVolume makes db's volume unless one is there; only one it made is
// deleted by a revert.
func (m *Manager) createVolume(ctx context.Context, db Database, r *revert.Reverter) error {
	vols, err := m.rt.Volumes(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(vols, db.Volume()) {
		m.log.Info("Using the kept volume", "database", db.Name, "volume", db.Volume())
		return nil
	}
	if err := m.rt.CreateVolume(ctx, db.Volume()); err != nil {
		return err
	}
	r.Add(func() error { return m.rt.DeleteVolume(context.WithoutCancel(ctx), db.Volume()) })
	return nil
}

// serverDevices are the server instance's disks: its volume and the shared
// socket directory.
func (m *Manager) serverDevices(db Database) (container.Devices, error) {
	pool, err := m.rt.VolumePool()
	if err != nil {
		return nil, err
	}
	devices := m.socketDevice(db, false)
	devices["data"] = map[string]string{"type": "disk", "pool": pool, "source": db.Volume(), "path": dataMount}
	return devices, nil
}

// Start brings a provisioned server up: its instance started (after a host
// reboot, say) and Postgres run by its supervisor. Starting a running server
// changes nothing.
func (m *Manager) Start(ctx context.Context, db Database) error {
	if err := m.rt.Start(ctx, db.Instance()); err != nil {
		return fmt.Errorf("start database %s: %w", db.Name, err)
	}
	if err := m.start(ctx, db); err != nil {
		return fmt.Errorf("start database %s: %w", db.Name, err)
	}
	return nil
}

func (m *Manager) start(ctx context.Context, db Database) error {
	if err := m.ownSocketDir(ctx, db); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	return m.startServer(ctx, server{instance: db.Instance(), socketDir: db.SocketDir()})
}

// ensureRole makes (or, on a kept volume, updates) the apps' role with
// creds' password and their database. The server gets the password's SCRAM
// verifier, on psql's stdin.
func (m *Manager) ensureRole(ctx context.Context, db Database, creds Credentials) error {
	verifier, err := scramVerifier(creds.Password)
	if err != nil {
		return err
	}
	role, name := quoteIdent(creds.User), quoteIdent(creds.Database)
	sql := fmt.Sprintf(`SELECT 'CREATE ROLE %[1]s LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %[3]s) \gexec
ALTER ROLE %[1]s LOGIN PASSWORD %[4]s;
SELECT 'CREATE DATABASE %[2]s OWNER %[1]s' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = %[5]s) \gexec
`, role, name, quoteLiteral(creds.User), quoteLiteral(verifier), quoteLiteral(creds.Database))
	if _, err := m.psql(ctx, db.Instance(), "postgres", sql); err != nil {
		return fmt.Errorf("create role and database: %w", err)
	}
	return nil
}

// Deprovision deletes db's instance and socket directory, and its volume
// unless keepVolume (the data of a server deleted by mistake survives; a
// Provision of the same name uses it again). A missing part is not an error.
func (m *Manager) Deprovision(ctx context.Context, db Database, keepVolume bool) error {
	if err := db.Check(); err != nil {
		return err
	}
	if err := m.rt.Delete(ctx, db.Instance()); err != nil {
		return fmt.Errorf("deprovision %s: %w", db.Name, err)
	}
	if !keepVolume {
		if err := m.rt.DeleteVolume(ctx, db.Volume()); err != nil {
			return fmt.Errorf("deprovision %s: %w", db.Name, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(m.dir, db.Name)); err != nil {
		return fmt.Errorf("deprovision %s: %w", db.Name, err)
	}
	m.log.Info("Deprovisioned database", "database", db.Name, "kept_volume", keepVolume)
	return nil
}
