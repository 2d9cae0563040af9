package frontproxy

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Under systemd the proxy unit is Type=notify: the unit counts as started
// once the proxy says READY=1. After an upgrade the new process also says
// MAINPID=, so that systemd follows it as the unit's main process and takes
// the old one's exit, once it has finished its requests, for what it is
// rather than for the proxy dying.

// notifySystemd tells the service manager that this process serves and,
// when it took over from another process, that it is the main one now.
// Not run by a service manager ($NOTIFY_SOCKET unset), it does nothing.
func notifySystemd(successor bool) error {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return nil
	}
	msg := "READY=1"
	if successor {
		msg += fmt.Sprintf("\nMAINPID=%d", os.Getpid())
	}
	return sendNotify(socket, msg)
}

// sendNotify sends msg as one datagram to the notify socket. Go dials a
// name starting with '@' in the abstract namespace, as the protocol means.
func sendNotify(socket, msg string) error {
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") {
		return fmt.Errorf("NOTIFY_SOCKET %q is not a unix socket", socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}
