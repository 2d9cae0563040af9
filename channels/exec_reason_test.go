package channels

import "testing"

func TestExitReasonSaysWhatTheStatusMeans(t *testing.T) {
	for code, want := range map[int]string{
		4:   "exited with status 4",
		127: "exited with status 127: command not found",
		126: "exited with status 126: command not executable",
		137: "exited with status 137: killed (SIGKILL; out of memory?)",
		143: "exited with status 143: killed by signal 15",
	} {
		if got := exitReason(code); got != want {
			t.Errorf("exitReason(%d) = %q, want %q", code, got, want)
		}
	}
}
