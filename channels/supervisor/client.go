package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// A client call owns conn for one request: the protocol has one request
// per connection. ctx ending closes conn. Everything read is bounded and
// errors are one line, whatever the instance sends.

// Deliver sends tree (a tar of the app, as git archive makes it) to be
// unpacked into /app.
func Deliver(ctx context.Context, conn net.Conn, tree io.Reader) error {
	defer guard(ctx, conn)()
	if err := writeJSON(conn, request{Op: "deliver"}); err != nil {
		return callErr(ctx, "deliver", err)
	}
	_, copyErr := io.Copy(conn, tree)
	// End the stream, so a tree cut short (or not a tar at all) ends the
	// supervisor's read with an error instead of a wait for more.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && copyErr == nil {
		copyErr = cw.CloseWrite()
	}
	// Read the answer even when the copy failed: the supervisor's reason
	// (a refused entry) beats our broken pipe, and an ok means the whole
	// archive arrived (what failed was only the padding after its end).
	rep, err := readReply(bufio.NewReader(conn))
	if err == nil && rep.OK {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("%w: no ok", ErrProtocol)
	}
	if copyErr != nil && !errors.Is(err, ErrRefused) {
		err = copyErr
	}
	return callErr(ctx, "deliver", err)
}

// Start replaces the instance's supervised processes with spec's.
func Start(ctx context.Context, conn net.Conn, spec Spec) error {
	defer guard(ctx, conn)()
	if err := writeJSON(conn, request{Op: "start", Spec: &spec}); err != nil {
		return callErr(ctx, "start", err)
	}
	rep, err := readReply(bufio.NewReader(conn))
	if err == nil && !rep.OK {
		err = fmt.Errorf("%w: no ok", ErrProtocol)
	}
	return callErr(ctx, "start", err)
}

// Exec runs req in the instance, copies its output (stdout and stderr
// merged) to out and returns its exit code (128+signal when a signal
// killed it). ctx ending closes conn, which kills the command.
func Exec(ctx context.Context, conn net.Conn, req ExecRequest, out io.Writer) (int, error) {
	defer guard(ctx, conn)()
	if err := writeJSON(conn, request{Op: "exec", Argv: req.Argv, Env: req.Env, Dir: req.Dir}); err != nil {
		return -1, callErr(ctx, "exec", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		rep, err := readReply(br)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: the connection ended before the exit code", ErrProtocol)
		}
		if err != nil {
			return -1, callErr(ctx, "exec", err)
		}
		if rep.Exit != nil {
			return *rep.Exit, nil
		}
		if _, err := out.Write(rep.Data); err != nil {
			return -1, fmt.Errorf("exec: write its output: %w", err)
		}
	}
}

// Logs reads the instance's log records after cur (all of this boot's
// when cur.Boot is another boot) and calls fn for each, with rec.Boot set.
// With follow it goes on until ctx ends, fn fails or the supervisor closes
// the stream (it stopped); a stream the supervisor ends returns nil.
func Logs(ctx context.Context, conn net.Conn, cur Cursor, follow bool, fn func(Record) error) error {
	defer guard(ctx, conn)()
	if err := writeJSON(conn, request{Op: "logs", Boot: cur.Boot, After: cur.After, Follow: follow}); err != nil {
		return callErr(ctx, "logs", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	head, err := readReply(br)
	if err == nil && head.Boot == "" {
		err = fmt.Errorf("%w: no boot id", ErrProtocol)
	}
	if err != nil {
		return callErr(ctx, "logs", err)
	}
	for {
		line, err := readLine(br, MaxLine)
		if errors.Is(err, io.EOF) && ctx.Err() == nil {
			return nil
		}
		if err != nil {
			return callErr(ctx, "logs", err)
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return callErr(ctx, "logs", fmt.Errorf("%w: %s", ErrProtocol, oneLine(err.Error())))
		}
		rec.Boot = head.Boot
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// Status asks what the instance runs.
func Status(ctx context.Context, conn net.Conn) (StatusReport, error) {
	defer guard(ctx, conn)()
	if err := writeJSON(conn, request{Op: "status"}); err != nil {
		return StatusReport{}, callErr(ctx, "status", err)
	}
	line, err := readLine(bufio.NewReader(conn), MaxLine)
	if err != nil {
		return StatusReport{}, callErr(ctx, "status", err)
	}
	var st struct {
		StatusReport
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &st); err != nil {
		return StatusReport{}, callErr(ctx, "status", fmt.Errorf("%w: %s", ErrProtocol, oneLine(err.Error())))
	}
	if st.Error != "" {
		return StatusReport{}, callErr(ctx, "status", fmt.Errorf("%w: %s", ErrRefused, oneLine(st.Error)))
	}
	return st.StatusReport, nil
}

// guard closes conn when ctx ends; the returned func stops that.
func guard(ctx context.Context, conn net.Conn) func() bool {
	return context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
		conn.Close()
	})
}

// readReply reads one reply line; an error reply becomes ErrRefused.
func readReply(br *bufio.Reader) (reply, error) {
	line, err := readLine(br, MaxLine)
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return reply{}, fmt.Errorf("%w: %s", ErrProtocol, oneLine(err.Error()))
	}
	if rep.Error != "" {
		return reply{}, fmt.Errorf("%w: %s", ErrRefused, oneLine(rep.Error))
	}
	return rep, nil
}

// callErr names the call and prefers ctx's error when ctx ended it.
func callErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("supervisor %s: %w", op, ctx.Err())
	}
	if errors.Is(err, errLineTooLong) {
		err = fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return fmt.Errorf("supervisor %s: %w", op, err)
}
