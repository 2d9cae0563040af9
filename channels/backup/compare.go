package backup

import (
	"fmt"
	"sort"
	"strings"
)

// compareFiles names what differs between the files a backup holds and
// those a restore of it produced.
func compareFiles(want, got map[string]string) error {
	var missing, changed, extra []string
	for path, sum := range want {
		switch g, ok := got[path]; {
		case !ok:
			missing = append(missing, path)
		case g != sum:
			changed = append(changed, path)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			extra = append(extra, path)
		}
	}
	if len(missing)+len(changed)+len(extra) == 0 {
		return nil
	}
	var parts []string
	for _, p := range []struct {
		what  string
		paths []string
	}{{"missing", missing}, {"changed", changed}, {"not in the backup", extra}} {
		if len(p.paths) == 0 {
			continue
		}
		sort.Strings(p.paths)
		shown := p.paths
		if len(shown) > 3 {
			shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(p.paths)-3))
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(p.paths), p.what, strings.Join(shown, ", ")))
	}
	return fmt.Errorf("the restored copy differs from the backup: %s", strings.Join(parts, "; "))
}
