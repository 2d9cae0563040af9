package hooks

import (
	"github.com/slipway-dev/slipway/channels/runtime"
)

// terminal is the pseudo-terminal the SSH client asked for (ssh -t), to run
// a command a person types into on one; nil without.
func (c *call) terminal() *runtime.Terminal {
	if c.sess == nil {
		return nil
	}
	pty, windows, ok := c.sess.Pty()
	if !ok {
		return nil
	}
	sizes := make(chan [2]int, 1)
	go func() {
		defer close(sizes)
		for {
			select {
			case w, ok := <-windows:
				if !ok {
					return
				}
				select {
				case sizes <- [2]int{w.Width, w.Height}:
				case <-c.ctx.Done():
					return
				}
			case <-c.ctx.Done():
				return
			}
		}
	}()
	t := &runtime.Terminal{Term: pty.Term, Width: pty.Window.Width, Height: pty.Window.Height, Resize: sizes}
	// A client without a terminal of its own (ssh -tt < file) says 0x0,
	// which makes psql page every answer: a common size instead.
	if t.Width <= 0 || t.Height <= 0 {
		t.Width, t.Height = 80, 24
	}
	return t
}
