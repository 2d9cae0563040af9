package container_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/runtime"
)

func TestExecTerminalIsATerminal(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, map[string]string{"app": "tty"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	code, err := c.ExecTerminal(ctx, name, []string{"sh", "-c", "if [ -t 0 ]; then echo on-a-tty; fi; read line; echo got-$line"},
		nil, strings.NewReader("typed\n"), &out, runtime.Terminal{Term: "xterm", Width: 80, Height: 24})
	if err != nil || code != 0 || !strings.Contains(out.String(), "on-a-tty") || !strings.Contains(out.String(), "got-typed") {
		t.Errorf("exit %d, %v, output %q", code, err, out.String())
	}
}
