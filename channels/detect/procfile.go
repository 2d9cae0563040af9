package detect

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// ProcfileName is the Procfile's path at the root of an app's repository.
const ProcfileName = "Procfile"

// Process is one process type: a name (web, worker, release, ...) and the
// shell command it runs in /app.
type Process struct {
	Name    string
	Command string
}

// ProcfileError points at the line of the Procfile at fault.
type ProcfileError struct {
	Line   int
	Reason string
}

func (e *ProcfileError) Error() string {
	return fmt.Sprintf("%s line %d: %s", ProcfileName, e.Line, e.Reason)
}

var processName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidProcessName reports whether name may name a process type: Heroku's
// rule, which also keeps names safe as parts of file and service names.
func ValidProcessName(name string) bool { return processName.MatchString(name) }

// ParseProcfile reads a Procfile with Heroku's rules: one `name: command`
// per line, blank lines and # comments ignored. Unlike Heroku, which keeps
// the last of two lines with one name, a repeated name is an error: one of
// the two commands would be silently dropped.
func ParseProcfile(data []byte) ([]Process, error) {
	var out []Process
	first := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := procfileLine(n, line)
		if err != nil {
			return nil, err
		}
		if at, ok := first[p.Name]; ok {
			return nil, &ProcfileError{Line: n, Reason: fmt.Sprintf("process type %s appears twice (first on line %d)", p.Name, at)}
		}
		first[p.Name] = n
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, &ProcfileError{Line: n + 1, Reason: "cannot be read: " + err.Error()}
	}
	return out, nil
}

func procfileLine(n int, line string) (Process, error) {
	name, cmd, ok := strings.Cut(line, ":")
	if !ok {
		return Process{}, &ProcfileError{Line: n, Reason: fmt.Sprintf("%s is not of the form `name: command`", quoteShort(line))}
	}
	name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
	if !ValidProcessName(name) {
		return Process{}, &ProcfileError{Line: n, Reason: fmt.Sprintf("process type %s may hold only letters, digits, _ and - (lines are `name: command`)", quoteShort(name))}
	}
	if cmd == "" {
		return Process{}, &ProcfileError{Line: n, Reason: fmt.Sprintf("process type %s has no command", name)}
	}
	return Process{Name: name, Command: cmd}, nil
}

// quoteShort quotes s for a one-line message, cut to a readable length.
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	return fmt.Sprintf("%q", s)
}
