package backup

import (
	"strings"
	"testing"
	"time"
)

func TestDueFiresOnceInTheWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		spec     string
		from, to time.Time
		want     bool
	}{
		{"30 2 * * *", at(2, 29), at(2, 30), true},
		{"30 2 * * *", at(2, 30), at(2, 31), false}, // (from, to]: from itself is past
		{"30 2 * * *", at(2, 28), at(2, 29), false},
		{"@daily", at(23, 59), at(23, 59).Add(time.Minute), true},
		{"off", at(0, 0), at(23, 59), false},
		{"", at(0, 0), at(23, 59), false},
		{"not cron", at(0, 0), at(23, 59), false},
	} {
		if got := due(tc.spec, tc.from, tc.to); got != tc.want {
			t.Errorf("due(%q, %s, %s) = %v", tc.spec, tc.from.Format("15:04"), tc.to.Format("15:04"), got)
		}
	}
}

func TestParseScheduleTakesCronOffAndDefault(t *testing.T) {
	for in, want := range map[string]string{"default": "", "off": "off", "0 */6 * * *": "0 */6 * * *", "@daily": "@daily"} {
		if got, err := ParseSchedule(in); err != nil || got != want {
			t.Errorf("ParseSchedule(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseSchedule("not cron")
	if err == nil || !strings.HasPrefix(err.Error(), `"not cron" is not a cron schedule (e.g. "30 2 * * *", "@daily", or off): `) {
		t.Errorf("ParseSchedule of a non-cron line: %v", err)
	}
}
