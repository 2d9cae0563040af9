package backup

import (
	"sort"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// Retain splits one series of backups (one volume of one installation, or
// the store) into those to keep and those past retention: the newest
// verified backup of each of the last daily days that have one, and of each
// of the last weekly ISO weeks that have one, are kept. A failed backup is
// kept until a verified one newer than it exists, so the failure stays in
// view; one still running is always kept.
func Retain(backups []store.Backup, daily, weekly int) (keep, drop []store.Backup) {
	sorted := newestFirst(backups)
	keepIDs := map[int64]bool{}
	days, weeks := map[string]bool{}, map[[2]int]bool{}
	var newestVerified time.Time
	for _, b := range sorted {
		if b.State != store.BackupVerified {
			continue
		}
		if newestVerified.IsZero() {
			newestVerified = b.CreatedAt
		}
		// Newest first, so the first backup seen of a day or week is its newest.
		if day := b.CreatedAt.UTC().Format("2006-01-02"); !days[day] {
			days[day] = true
			keepIDs[b.ID] = keepIDs[b.ID] || len(days) <= daily
		}
		year, wk := b.CreatedAt.UTC().ISOWeek()
		if week := [2]int{year, wk}; !weeks[week] {
			weeks[week] = true
			keepIDs[b.ID] = keepIDs[b.ID] || len(weeks) <= weekly
		}
	}
	for _, b := range sorted {
		switch {
		case b.State == store.BackupRunning, keepIDs[b.ID]:
			keep = append(keep, b)
		case b.State == store.BackupFailed && (newestVerified.IsZero() || b.CreatedAt.After(newestVerified)):
			keep = append(keep, b)
		default:
			drop = append(drop, b)
		}
	}
	return keep, drop
}

// newestFirst sorts a copy of backups by time taken, newest first.
func newestFirst(backups []store.Backup) []store.Backup {
	sorted := append([]store.Backup(nil), backups...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].CreatedAt.Equal(sorted[j].CreatedAt) {
			return sorted[i].CreatedAt.After(sorted[j].CreatedAt)
		}
		return sorted[i].ID > sorted[j].ID
	})
	return sorted
}
