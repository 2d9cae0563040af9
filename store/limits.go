package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Limits bound what an installation's instances may use; a zero field is no
// limit.
type Limits struct {
	CPU    int   // CPUs
	Memory int64 // bytes
}

// None reports whether nothing is limited.
func (l Limits) None() bool { return l.CPU == 0 && l.Memory == 0 }

// String renders the limits as status shows them: "2 CPUs, 512 MiB memory",
// "no CPU limit, 1 GiB memory", or "none".
func (l Limits) String() string {
	if l.None() {
		return "none"
	}
	cpu, mem := "no CPU limit", "no memory limit"
	switch {
	case l.CPU == 1:
		cpu = "1 CPU"
	case l.CPU > 1:
		cpu = fmt.Sprintf("%d CPUs", l.CPU)
	}
	if l.Memory > 0 {
		mem = MemorySize(l.Memory) + " memory"
	}
	return cpu + ", " + mem
}

// MemorySize renders bytes in the largest binary unit that keeps it whole
// enough to read: 512 MiB, 1.5 GiB.
func MemorySize(n int64) string {
	const mib, gib = 1 << 20, 1 << 30
	switch {
	case n >= gib && (n*10)%gib == 0:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/gib)) + " GiB"
	case n >= mib:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/mib)) + " MiB"
	}
	return fmt.Sprintf("%d bytes", n)
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// SetLimits records an installation's limits (before its first deploy; a
// deploy records them with its swap).
func (s *Store) SetLimits(ctx context.Context, id int64, l Limits) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return setLimits(ctx, tx, id, l) })
}

func setLimits(ctx context.Context, tx *sql.Tx, id int64, l Limits) error {
	_, err := tx.ExecContext(ctx, `UPDATE installations SET limit_cpu = ?, limit_memory = ? WHERE id = ?`, l.CPU, l.Memory, id)
	return wrapError(err)
}
