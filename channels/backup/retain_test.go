package backup

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestRetainKeepsDailiesAndWeeklies(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 30, 0, 0, time.UTC) }
	var backups []store.Backup
	id := int64(0)
	add := func(at time.Time, state string) {
		id++
		backups = append(backups, store.Backup{ID: id, CreatedAt: at, State: state})
	}
	// One verified backup a day from Nov 1 (Sunday) to Nov 23, two on the 23rd.
	for d := 1; d <= 23; d++ {
		add(day(d, 2), store.BackupVerified)
	}
	add(day(23, 14), store.BackupVerified) // 24: newest of the 23rd
	add(day(20, 9), store.BackupFailed)    // 25: failed, older than the newest verified
	add(day(23, 15), store.BackupFailed)   // 26: failed, newer than every verified one
	add(day(23, 16), store.BackupRunning)  // 27: being taken
	keep, drop := Retain(backups, 7, 4)
	var kept []string
	for _, b := range keep {
		kept = append(kept, fmt.Sprintf("%d:%s", b.ID, b.CreatedAt.Format("01-02T15")))
	}
	// Days: the 23rd (its 14h backup), 22nd ... 17th. ISO weeks (the 23rd
	// is a Monday): W48 -> the 23rd, W47 -> the 22nd, W46 -> the 15th, W45 -> the 8th.
	want := "27:11-23T16 26:11-23T15 24:11-23T14 22:11-22T02 21:11-21T02 20:11-20T02 19:11-19T02 18:11-18T02 17:11-17T02 15:11-15T02 8:11-08T02"
	if got := strings.Join(kept, " "); got != want {
		t.Errorf("kept\n %s\nwant\n %s", got, want)
	}
	if len(keep)+len(drop) != len(backups) {
		t.Errorf("kept %d + dropped %d != %d", len(keep), len(drop), len(backups))
	}
	for _, b := range drop {
		if b.State == store.BackupRunning {
			t.Errorf("dropped %+v", b)
		}
	}
}
