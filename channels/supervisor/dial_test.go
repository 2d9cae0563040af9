package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A symlink in the instance must never lead the daemon to a host socket.
func TestDialRefusesASymlinkedSocket(t *testing.T) {
	host := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(host, "host.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()

	for name, link := range map[string]func(root string) error{
		"socket": func(root string) error {
			os.MkdirAll(root+"/run/slipway", 0o755)
			return os.Symlink(filepath.Join(host, "host.sock"), root+"/"+SocketPath)
		},
		"directory": func(root string) error {
			os.MkdirAll(host+"/run/slipway", 0o755)
			os.Symlink(filepath.Join(host, "host.sock"), host+"/"+SocketPath)
			return os.Symlink(host+"/run", root+"/run")
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := link(root); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			conn, err := DialRoot(ctx, root)
			if err == nil {
				conn.Close()
				t.Fatal("dialled through a symlink")
			}
			if !errors.Is(err, ErrNoSupervisor) {
				t.Errorf("error %v", err)
			}
		})
	}
	select {
	case <-accepted:
		t.Fatal("the host socket got a connection")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestDialWaitsForTheSocket(t *testing.T) {
	root, err := os.MkdirTemp("", "sup")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	s := New(Options{Root: root})
	go func() {
		time.Sleep(30 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		s.Run(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	conn, err := DialRoot(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := Status(ctx, conn)
	if err != nil || st.Boot != s.Boot() {
		t.Fatalf("status %+v, %v", st, err)
	}
	t.Logf("connected %v after start", time.Since(begin))
}

func TestDialInstanceRefusesTheHostsRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := DialInstance(ctx, os.Getpid()); !errors.Is(err, ErrNoSupervisor) {
		t.Fatalf("got %v", err)
	}
}

func TestHasMountPoint(t *testing.T) {
	info := "22 1 0:21 / / rw - ext4 /dev/root rw\n23 22 0:22 / /run rw,nosuid - tmpfs tmpfs rw\n"
	if !hasMountPoint(strings.NewReader(info), "/run") || hasMountPoint(strings.NewReader(info), "/dev/shm") {
		t.Fatal("wrong")
	}
}
