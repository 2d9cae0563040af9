// Package runtime holds what the operation engine (package channels) and the
// runtimes that serve it (channels/container over Incus, runtimetest in unit
// tests) must agree on beyond method signatures: the report of one instance.
// It imports only the standard library, so both sides import it and neither imports the other.
package runtime

import "time"

// Instance is one instance a runtime lists: its name, the labels it was
// launched with, and whether it runs.
type Instance struct {
	Name     string
	Labels   map[string]string
	Running  bool
	Location string // the cluster member it runs on; "" when Incus is not a cluster
}

// LogLine is one line an instance's process printed, or one of its
// supervisor's events about a process (Stream "event"). Boot and Seq place it
// in the supervisor's stream: Seq grows within one boot of the instance.
type LogLine struct {
	Time    time.Time
	Process string
	Stream  string // stdout, stderr or event
	Line    string
	Boot    string
	Seq     uint64
}

// Processes is what an instance's supervisor runs: the app's long-running
// processes, in order (web first), in Dir with Env, stopped with SIGTERM and
// Grace to finish before SIGKILL.
type Processes struct {
	List  []Process
	Env   map[string]string
	Dir   string
	Grace time.Duration
}

// Process is one process type of the app and its command (run by sh -c).
type Process struct {
	Name    string
	Command string
}

// Terminal is the pseudo-terminal a command runs on when a person types
// into it: its type and size, and its new sizes as they come (width,
// height in characters).
type Terminal struct {
	Term          string
	Width, Height int
	Resize        <-chan [2]int
}

// ProcessState is one of an instance's processes as its supervisor reports
// it: running, backoff (waiting to be restarted) or stopping.
type ProcessState struct {
	Name     string
	State    string
	Restarts int
	Started  time.Time
	LastExit string
}
