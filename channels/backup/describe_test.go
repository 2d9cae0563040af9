package backup

import "testing"

func TestHumanSizeAndPlural(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 123456: "120.6 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	if plural(1, "file") != "1 file" || plural(0, "file") != "0 files" || plural(7, "backup") != "7 backups" {
		t.Error("plural")
	}
}
