package frontproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/router"
)

// An upgrade starts the binary now installed as a new proxy process and
// hands it the listening sockets themselves (not their addresses): the
// kernel's queue of connections not yet accepted stays where it is, so no
// client is refused while the old process finishes the requests it has and
// the new one takes the next.
//
// The new process gets the sockets as fds 3 (HTTP) and 4 (control), and the
// write end of a pipe as fd 5, on which it says it serves; with HTTPS, its socket
// as fd 6, said by handoverHTTPSEnv (so that a process of a slipway without HTTPS
// can hand over to one with it, which then listens itself).

// The ACME challenges set (transient, not in the state file) go along as JSON in
// handoverACMEEnv: an upgrade may come in the middle of a validation.

const (
	handoverEnv      = "SLIPWAY_PROXY_HANDOVER"
	handoverHTTPSEnv = "SLIPWAY_PROXY_HANDOVER_HTTPS"
	handoverACMEEnv  = "SLIPWAY_PROXY_HANDOVER_ACME"
)

// inheritedChallenges sets the ACME challenges the previous process had.
func inheritedChallenges(ctx context.Context, table *router.Table, logger *slog.Logger) {
	data, ok := os.LookupEnv(handoverACMEEnv)
	if !inherited() || !ok {
		return
	}
	os.Unsetenv(handoverACMEEnv)
	var c router.Challenges
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		logger.Warn("The ACME challenges handed over do not read", "err", err)
		return
	}
	table.RestoreChallenges(ctx, c)
}

// inheritedHTTPS returns the HTTPS socket handed over, or nil if none was.
func inheritedHTTPS() (net.Listener, error) {
	if !inherited() || os.Getenv(handoverHTTPSEnv) != "1" {
		return nil, nil
	}
	os.Unsetenv(handoverHTTPSEnv)
	ln, err := net.FileListener(os.NewFile(6, "https"))
	if err != nil {
		return nil, fmt.Errorf("the HTTPS socket handed over: %w", err)
	}
	return ln, nil
}

// readyTimeout bounds how long the old process waits for the new to serve.
const readyTimeout = 15 * time.Second

func inherited() bool { return os.Getenv(handoverEnv) == "1" }

func inheritedListeners() (net.Listener, *net.UnixListener, error) {
	web, err := net.FileListener(os.NewFile(3, "http"))
	if err != nil {
		return nil, nil, fmt.Errorf("the HTTP socket handed over: %w", err)
	}
	ln, err := net.FileListener(os.NewFile(4, "control"))
	if err != nil {
		web.Close()
		return nil, nil, fmt.Errorf("the control socket handed over: %w", err)
	}
	control, ok := ln.(*net.UnixListener)
	if !ok {
		web.Close()
		ln.Close()
		return nil, nil, errors.New("the control socket handed over is not a unix socket")
	}
	return web, control, nil
}

// ready tells systemd, if it runs the proxy, and the process that handed
// over, if any, that this one serves. Systemd hears first: once told, the
// old process finishes and exits, and by then systemd must know the new
// main pid.
func ready() error {
	successor := inherited()
	err := notifySystemd(successor)
	if !successor {
		return err
	}
	os.Unsetenv(handoverEnv) // a later upgrade of this process sets it again
	f := os.NewFile(5, "ready")
	fmt.Fprintln(f, "ready")
	f.Close()
	return err
}

// upgrade starts the new process and returns once it serves. The table is
// frozen meanwhile, so the state file the new process reads is the last.
func (p *process) upgrade() (func(), error) {
	resume := p.table.Freeze()
	acme, err := json.Marshal(p.table.ChallengesFrozen())
	if err != nil {
		resume(false)
		return nil, err
	}
	webFile, err := p.web.(*net.TCPListener).File()
	if err != nil {
		resume(false)
		return nil, err
	}
	defer webFile.Close()
	var secureFile *os.File
	if p.secure != nil {
		if secureFile, err = p.secure.(*net.TCPListener).File(); err != nil {
			resume(false)
			return nil, err
		}
		defer secureFile.Close()
	}
	p.control.SetUnlinkOnClose(false)
	ctlFile, err := p.control.File()
	if err != nil {
		resume(false)
		return nil, err
	}
	defer ctlFile.Close()
	p.control.Close() // connections wait in the socket's queue for the new process
	if err := p.startSuccessor(webFile, ctlFile, secureFile, acme); err != nil {
		resume(false)
		p.controlAgain(ctlFile)
		return nil, err
	}
	resume(true)
	return func() { close(p.handedOver) }, nil
}

// startSuccessor runs this proxy's binary, as installed now, with the
// sockets, and waits until it says it serves.
func (p *process) startSuccessor(web, control, secure *os.File, acme []byte) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(p.binary, os.Args[1:]...)
	cmd.Env = append(os.Environ(), handoverEnv+"=1", handoverACMEEnv+"="+string(acme))
	cmd.ExtraFiles = []*os.File{web, control, w}
	if secure != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, secure)
		cmd.Env = append(cmd.Env, handoverHTTPSEnv+"=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", p.binary, err)
	}
	said := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("it said %q", line)
		}
		said <- err
	}()
	select {
	case err = <-said:
	case <-time.After(readyTimeout):
		err = fmt.Errorf("it did not serve within %s", readyTimeout)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("the new proxy process (%s) did not take over: %w; this one keeps serving", p.binary, err)
	}
	go cmd.Wait() // it outlives this process; until then, reap it if it ends
	p.logger.Info("Handed the sockets to a new proxy process", "pid", cmd.Process.Pid, "binary", p.binary)
	return nil
}

// controlAgain serves the control socket again after a failed upgrade.
func (p *process) controlAgain(ctlFile *os.File) {
	ln, err := net.FileListener(ctlFile)
	if err != nil {
		p.logger.Error("Could not take the control socket back", "err", err)
		return
	}
	p.control = ln.(*net.UnixListener)
	go p.server.Serve(p.control)
}
