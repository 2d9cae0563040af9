// Package database runs Postgres servers for slipway: each one in its own
// Incus instance made from slipway/postgres, its data on its own custom
// volume, the server run by slipway's supervisor (the instance's init, as
// for apps), and backups that are proven by a restore.
//
// # Reaching a server from an app
//
// Instances have no network here, and an Incus proxy device costs about a
// second to start, so a server listens on a unix socket in a host directory
// (DataDir/databases/NAME/socket) that is a disk device of the database's
// instance and of every attached app instance, at the same path
// (SocketDir: /slipway/db/NAME). Traffic goes through the kernel, never
// through the daemon: apps keep their database while slipway restarts.
// Not under /run: the supervisor mounts a fresh tmpfs on /run at boot,
// which would hide a device mounted there by LXC.
//
// Unprivileged instances see host ids shifted (host uid 1000000+N is N
// inside). The directory is owned on the host by whatever id the
// instance's postgres user maps to (read from the instance's id map), so
// Postgres can make its socket there; it has mode 0711 and the socket
// 0777, so any user of an app instance, whatever its id map, can connect,
// and what guards the server is scram-sha-256 on every `local` connection.
// slipway's own commands (initdb, psql, pg_dump, pg_restore) run inside
// the database's instance over its loopback, which no app shares, as the
// superuser without a password; peer authentication is not used, because
// with the default shared id map an app's root could take the postgres
// uid and pass it.
//
// # Backups
//
// Dump holds a REPEATABLE READ transaction open, exports its snapshot, reads
// every table's row count and checksum in it, and has pg_dump -Fc dump that
// same snapshot (--snapshot), so the manifest describes exactly the rows in
// the dump. Verify restores a dump into a scratch server and compares; see
// manifest.go for the checksum.
package database
