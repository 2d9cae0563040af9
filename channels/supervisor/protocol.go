package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SocketPath is where the supervisor listens, relative to the instance's root.
const SocketPath = "run/slipway/supervisor.sock"

// MaxLine bounds every JSON line either side reads.
const MaxLine = 1 << 20

// BasePath is the PATH every process starts with (the spec's env may override it).
const BasePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec is what an instance runs: the whole supervised set.
type Spec struct {
	Processes []ProcessSpec     `json:"processes"`
	Env       map[string]string `json:"env,omitempty"`
	Dir       string            `json:"dir,omitempty"`           // inside the instance; default /app
	Grace     int               `json:"grace_seconds,omitempty"` // TERM to KILL; default 10
}

// ProcessSpec is one named command (a Procfile line).
type ProcessSpec struct {
	Name    string `json:"name"`
	Command string `json:"command"`
}

// ExecRequest is a one-off command (a build step).
type ExecRequest struct {
	Argv []string          `json:"argv"`
	Env  map[string]string `json:"env,omitempty"`
	Dir  string            `json:"dir,omitempty"` // default /app
}

// Record is one line of the log stream.
type Record struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Process string    `json:"process"`
	Stream  string    `json:"stream"` // stdout, stderr or event
	Line    string    `json:"line"`
	// Boot is filled in by Logs from the stream's first line (the server
	// does not repeat it), so a caller can resume with Cursor{rec.Boot, rec.Seq}.
	Boot string `json:"boot,omitempty"`
}

// Cursor is where a reader of the logs stands.
type Cursor struct {
	Boot  string
	After uint64
}

// StatusReport is what the supervisor runs now (the function Status returns
// it; Go cannot give a type and a function one name).
type StatusReport struct {
	Boot      string          `json:"boot"`
	Processes []ProcessStatus `json:"processes"`
}

// ProcessStatus is one supervised process.
type ProcessStatus struct {
	Name     string    `json:"name"`
	PID      int       `json:"pid,omitempty"`
	State    string    `json:"state"` // running, backoff or stopping
	Restarts int       `json:"restarts"`
	Started  time.Time `json:"started,omitzero"`
	LastExit string    `json:"last_exit,omitempty"`
}

// Streams and states.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamEvent  = "event"

	EventProcess = "slipway" // the process name of supervisor events

	StateRunning  = "running"
	StateBackoff  = "backoff"
	StateStopping = "stopping"
)

// request is the first line of every connection.
type request struct {
	Op     string            `json:"op"`
	Spec   *Spec             `json:"spec,omitempty"`
	Boot   string            `json:"boot,omitempty"`
	After  uint64            `json:"after,omitempty"`
	Follow bool              `json:"follow,omitempty"`
	Argv   []string          `json:"argv,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	Dir    string            `json:"dir,omitempty"`
}

// reply is every line the supervisor sends, but records.
type reply struct {
	OK     bool    `json:"ok,omitempty"`
	Error  string  `json:"error,omitempty"`
	Boot   string  `json:"boot,omitempty"`
	Oldest *uint64 `json:"oldest,omitempty"`
	Data   []byte  `json:"data,omitempty"`
	Exit   *int    `json:"exit,omitempty"`
}

var errLineTooLong = errors.New("line longer than 1 MiB")

// readLine reads one newline-terminated line of at most max bytes, without
// the newline. A line cut by EOF is an error: every message ends in one.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max+1 {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// oneLine makes s fit an error message: first line, printable, bounded.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// envList is the base environment, then env on top (sorted, so two equal
// specs give equal lists).
func envList(env map[string]string) []string {
	m := map[string]string{"PATH": BasePath, "HOME": "/root"}
	for k, v := range env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func checkEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return fmt.Errorf("bad environment variable %q", oneLine(k))
		}
	}
	return nil
}

func sortStatus(ps []ProcessStatus) {
	slices.SortFunc(ps, func(a, b ProcessStatus) int { return strings.Compare(a.Name, b.Name) })
}
