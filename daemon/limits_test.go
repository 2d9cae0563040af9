package daemon_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/channels/container"
)

// limits redeploys the installation bounded by Incus limits.cpu and
// limits.memory, status shows them, and a bad size is one line that changes
// nothing.
func TestLimitsBoundTheServingInstance(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	d := startDaemon(t)
	host, _ := d.deployed("lim", "bounded\n")

	if out := d.mustSSH("limits", "lim/production"); out != "lim/production: none\n" {
		t.Errorf("limits before: %q", out)
	}
	out := d.mustSSH("limits", "lim/production", "--cpu", "1", "--memory", "256MiB")
	if !strings.Contains(out, "Limits of lim/production: 1 CPU, 256 MiB memory (were: none)") || !strings.Contains(out, "succeeded") {
		t.Errorf("limits output:\n%s", out)
	}
	d.serves(host, "bounded")
	var st struct {
		Instance string
		Limits   struct {
			CPU         int
			MemoryBytes int64 `json:"memory_bytes"`
		}
	}
	d.statusJSON(&st, "lim/production")
	if st.Limits.CPU != 1 || st.Limits.MemoryBytes != 256<<20 {
		t.Errorf("status limits: %+v", st.Limits)
	}
	if table := d.mustSSH("status", "lim/production"); !strings.Contains(table, "1 CPU, 256 MiB memory") {
		t.Errorf("status table lacks the limits:\n%s", table)
	}
	rt, err := container.Connect(d.project, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	inst, _, err := rt.Server().GetInstance(st.Instance)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Config["limits.cpu"] != "1" || inst.Config["limits.memory"] != "268435456" {
		t.Errorf("instance %s config: limits.cpu=%q limits.memory=%q", st.Instance, inst.Config["limits.cpu"], inst.Config["limits.memory"])
	}

	_, errOut, code := d.ssh("limits", "lim/production", "--memory", "12KB")
	// One line saying what is wrong, then the usage.
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); code == 0 || len(lines) != 2 ||
		!strings.Contains(lines[0], "--memory 12KB is below 32 MiB") || !strings.HasPrefix(lines[1], "usage: limits APP/ENV") {
		t.Errorf("bad size: exit %d %q", code, errOut)
	}
	if out := d.mustSSH("limits", "lim/production"); out != "lim/production: 1 CPU, 256 MiB memory\n" {
		t.Errorf("limits after a refused change: %q", out)
	}
}
