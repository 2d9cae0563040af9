package frontproxy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// listenNotify stands in for systemd's notify socket at name and points
// $NOTIFY_SOCKET at it.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifySystemd(t *testing.T) {
	sockets := map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify"),
		"abstract": fmt.Sprintf("@slipway-notify-test-%d", os.Getpid()),
	}
	for kind, name := range sockets {
		t.Run(kind, func(t *testing.T) {
			conn := listenNotify(t, name)
			if err := notifySystemd(false); err != nil {
				t.Fatal(err)
			}
			if got := readNotify(t, conn); got != "READY=1" {
				t.Errorf("first start sent %q, want READY=1", got)
			}
			if err := notifySystemd(true); err != nil {
				t.Fatal(err)
			}
			if got, want := readNotify(t, conn), fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()); got != want {
				t.Errorf("successor sent %q, want %q", got, want)
			}
		})
	}
}

func TestNotifySystemdWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	for _, successor := range []bool{false, true} {
		if err := notifySystemd(successor); err != nil {
			t.Errorf("successor %v: %v", successor, err)
		}
	}
}

// A plain first start, with no process handing over, tells systemd too.
func TestReadyOnAFirstStartNotifies(t *testing.T) {
	t.Setenv(handoverEnv, "")
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	if err := ready(); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, conn); got != "READY=1" {
		t.Errorf("ready sent %q, want READY=1", got)
	}
}
