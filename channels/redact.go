package channels

import "strings"

// A redactor hides secret values in log lines. It catches a secret printed
// whole, and any run of more than redactRun characters of one (a secret split
// across lines, or printed in part). It cannot catch a secret transformed on
// the way out: reversed, encoded (base64, hex, URL escapes), or cut into
// pieces of redactRun characters or fewer.
type redactor struct {
	whole []string            // the values, replaced wherever they appear
	grams map[string]struct{} // every substring of redactRun+1 bytes of a long value
}

const (
	redactMin = 3 // shorter values are not hidden: they would mask ordinary words
	redactRun = 8 // longer runs of a value are hidden on their own
	redacted  = "********"
)

func (r *redactor) add(v string) {
	if len(v) < redactMin {
		return
	}
	r.whole = append(r.whole, v)
	if len(v) <= redactRun {
		return
	}
	if r.grams == nil {
		r.grams = map[string]struct{}{}
	}
	for i := 0; i+redactRun+1 <= len(v); i++ {
		r.grams[v[i:i+redactRun+1]] = struct{}{}
	}
}

// redact returns line with every secret value, and every run of one longer
// than redactRun characters, replaced by asterisks.
func (r *redactor) redact(line string) string {
	for _, v := range r.whole {
		line = strings.ReplaceAll(line, v, redacted)
	}
	if len(r.grams) == 0 || len(line) <= redactRun {
		return line
	}
	// Mark every byte covered by a window that is part of a secret, then
	// replace each marked run once.
	n := redactRun + 1
	covered := -1 // bytes before this index are marked
	var b strings.Builder
	start := -1 // first byte of the current marked run
	last := 0   // bytes before this index are written
	for i := 0; i+n <= len(line); i++ {
		if _, ok := r.grams[line[i:i+n]]; !ok {
			continue
		}
		if start < 0 || i > covered {
			if start >= 0 {
				b.WriteString(line[last:start] + redacted)
				last = covered
			}
			start = i
		}
		covered = i + n
	}
	if start < 0 {
		return line
	}
	b.WriteString(line[last:start] + redacted + line[covered:])
	return b.String()
}
