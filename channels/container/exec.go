package container

import (
	"context"
	"errors"
	"fmt"
	"github.com/slipway-dev/slipway/channels/runtime"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// Exec runs cmd in the instance with env added to Incus's default
// environment (PATH, HOME=/root, ...), in Incus's default working directory
// (/root). stdin (may be nil) is copied to the process; its stdout and
// stderr both go to out. It returns the command's exit code.
//
// When ctx ends, Exec sends SIGKILL to the command through the exec control
// socket and returns -1 and ctx.Err() at once. Nothing is written to out
// after Exec returns.
func (c *Incus) Exec(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer) (int, error) {
	if out == nil {
		out = io.Discard
	}
	w := &gatedWriter{w: out}
	defer w.close()
	return c.exec(ctx, name, cmd, env, stdin, w, w, nil)
}

// ExecStreams is Exec with stdout and stderr kept apart: for a command
// whose output is data (a database dump) and whose errors are not.
func (c *Incus) ExecStreams(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	wo, we := &gatedWriter{w: stdout}, &gatedWriter{w: stderr}
	defer wo.close()
	defer we.close()
	return c.exec(ctx, name, cmd, env, stdin, wo, we, nil)
}

// ExecTerminal is Exec on a pseudo-terminal of term's size, following its
// changes: what a person typing into psql or a shell needs. Output and
// errors come mixed, as on any terminal.
func (c *Incus) ExecTerminal(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer, term runtime.Terminal) (int, error) {
	w := &gatedWriter{w: out}
	defer w.close()
	return c.exec(ctx, name, cmd, env, stdin, w, w, &term)
}

func (c *Incus) exec(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, stdout, stderr *gatedWriter, term *runtime.Terminal) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: empty command", name)
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	var in io.Reader
	if stdin != nil {
		gr := &gatedReader{r: stdin}
		defer gr.close()
		in = gr
	}

	control := make(chan *websocket.Conn, 1)
	dataDone := make(chan bool)
	post := api.InstanceExecPost{Command: cmd, Environment: env, WaitForWS: true}
	onControl := func(conn *websocket.Conn) { control <- conn }
	if term != nil {
		post.Interactive, post.Width, post.Height = true, term.Width, term.Height
		if in == nil {
			in = strings.NewReader("")
		}
		onControl = func(conn *websocket.Conn) {
			control <- conn
			go followResizes(ctx, conn, term.Resize)
		}
	}
	op, err := c.srv.ExecInstance(name, post, &incus.InstanceExecArgs{
		Stdin:    in,
		Stdout:   stdout,
		Stderr:   stderr,
		Control:  onControl,
		DataDone: dataDone,
	})
	if err != nil {
		return -1, execErr(err, name)
	}

	final, err := c.wait(ctx, op)
	if ctx.Err() != nil {
		kill(control)
		return -1, ctx.Err()
	}
	if code, ok := shellStatus(err); ok {
		// Incus reports these statuses as errors; they are the command's
		// (sh's "not found"), and the output that said so may still come.
		select {
		case <-dataDone:
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return code, nil
	}
	if err != nil {
		return -1, execErr(err, name)
	}
	// The operation ends when the process exits; the last of its output may
	// still be on its way through the stdout/stderr websockets.
	select {
	case <-dataDone:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	code, ok := final.Metadata["return"].(float64)
	if !ok {
		return -1, fmt.Errorf("exec in %s: incus reported no exit code", name)
	}
	return int(code), nil
}

// shellStatus is the exit status Incus turned into an error: 127 for
// "Command not found", 126 for "Command not executable".
func shellStatus(err error) (int, bool) {
	switch {
	case err == nil:
		return 0, false
	case strings.Contains(err.Error(), "Command not found"):
		return 127, true
	case strings.Contains(err.Error(), "Command not executable"):
		return 126, true
	}
	return 0, false
}

func execErr(err error, name string) error {
	if isNotRunning(err) {
		return fmt.Errorf("exec in %s: %w", name, ErrNotRunning)
	}
	return wrap(err, "exec in %s", name)
}

// kill asks Incus to SIGKILL the exec'd process. Only the process itself is
// signalled, not what it started; a cancelled build's children die with the
// instance, which the engine deletes on failure.
func kill(control chan *websocket.Conn) {
	var conn *websocket.Conn
	select {
	case conn = <-control:
	case <-time.After(time.Second):
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = conn.WriteJSON(api.InstanceExecControl{Command: "signal", Signal: 9})
}

// gatedWriter serialises the stdout and stderr copiers (the Incus client
// runs one goroutine each) and drops writes once Exec has returned, so a
// cancelled Exec never writes into a log its caller has closed.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errors.New("exec returned")
	}
	return g.w.Write(p)
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// gatedReader stops reading the caller's stdin once Exec has returned.
type gatedReader struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return 0, io.EOF
	}
	return g.r.Read(p)
}

func (g *gatedReader) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// followResizes passes a terminal's new sizes to the process on it.
func followResizes(ctx context.Context, conn *websocket.Conn, sizes <-chan [2]int) {
	for {
		select {
		case <-ctx.Done():
			return
		case size, ok := <-sizes:
			if !ok {
				return
			}
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			if conn.WriteJSON(api.InstanceExecControl{Command: "window-resize",
				Args: map[string]string{"width": strconv.Itoa(size[0]), "height": strconv.Itoa(size[1])}}) != nil {
				return
			}
		}
	}
}
