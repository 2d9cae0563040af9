package backup

import (
	"fmt"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

// describe names what a backup is of, for the log.
func describe(b store.Backup) string {
	switch b.Kind {
	case store.BackupKindStore:
		return "the store"
	case store.BackupKindSystem:
		return "slipway itself"
	}
	return b.App + "/" + b.Environment + " volume " + b.Volume
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func dashIfEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
