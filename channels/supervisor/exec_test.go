package supervisor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExecStreamsOutputInOrderAndItsExitCode(t *testing.T) {
	_, root := newTest(t, Options{})
	var out bytes.Buffer
	code, err := Exec(context.Background(), dial(t, root), ExecRequest{
		Argv: []string{"/bin/sh", "-c", `echo a; echo b >&2; echo c; echo "$GREETING $(pwd)"; exit 3`},
		Env:  map[string]string{"GREETING": "hi"},
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	if want := "a\nb\nc\nhi " + root + "/app\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestExecBinaryOutput(t *testing.T) {
	_, root := newTest(t, Options{})
	var out bytes.Buffer
	code, err := Exec(context.Background(), dial(t, root), ExecRequest{Argv: []string{"head", "-c", "300000", "/dev/urandom"}}, &out)
	if err != nil || code != 0 || out.Len() != 300000 {
		t.Fatalf("code %d, %d bytes, %v", code, out.Len(), err)
	}
}

func TestExecOfAMissingCommand(t *testing.T) {
	_, root := newTest(t, Options{})
	_, err := Exec(context.Background(), dial(t, root), ExecRequest{Argv: []string{"no-such-command"}}, new(bytes.Buffer))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "command not found") {
		t.Fatalf("got %v", err)
	}
}

func TestExecIsKilledWhenTheClientGoes(t *testing.T) {
	_, root := newTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	pidFile := root + "/app/pid"
	done := make(chan error, 1)
	go func() {
		_, err := Exec(ctx, dial(t, root), ExecRequest{Argv: []string{"/bin/sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait"}}, new(bytes.Buffer))
		done <- err
	}()
	var pid int
	for i := 0; pid == 0; i++ {
		if i > 500 {
			t.Fatal("the command did not start")
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("exec returned %v", err)
	}
	// The sleep is a grandchild: only killing the group gets it.
	for i := 0; syscall.Kill(pid, 0) == nil; i++ {
		if i > 400 {
			t.Fatalf("the command's child (pid %d) survived the client", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
