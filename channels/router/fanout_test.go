package router

import (
	"context"
	"net"
	"path/filepath"
	"testing"
)

func TestFanoutRoutesEveryMembersProxy(t *testing.T) {
	b := newBackends(t, "web-1", "web-2")
	here, local, _ := serve(t, b)
	there, other, _ := serve(t, b)
	down := NewClient(filepath.Join(t.TempDir(), "nobody.sock"))
	// Through a dial function, as through a member's agent.
	viaDial := NewClientDial("the proxy of member two", func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", other.socket)
	})
	f := &Fanout{Local: local, Others: map[string]*Client{"two": viaDial, "three": down}}
	ctx := context.Background()
	if _, err := f.RouteSet(ctx, "a.test", []string{"web-1", "web-2"}, 80, "/"); err != nil {
		t.Fatalf("a member whose proxy is down must not fail the change: %v", err)
	}
	if code, body := get(here, "a.test", "/"); code != 200 || body == "" {
		t.Fatalf("the local proxy: %d %q", code, body)
	}
	if code, body := get(there, "a.test", "/"); code != 200 || body == "" {
		t.Fatalf("the other member's proxy: %d %q", code, body)
	}
	if !f.TakeStale() {
		t.Fatal("the member whose proxy is down is not marked to be synced again")
	}
	if f.TakeStale() {
		t.Fatal("TakeStale did not reset")
	}
	replaced, err := f.RouteSet(ctx, "a.test", []string{"web-2"}, 80, "")
	if err != nil || len(replaced) != 1 || replaced[0] != "web-1" {
		t.Fatalf("replaced %v %v", replaced, err)
	}
	if err := f.Drain(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	f.Local = down
	if _, err := f.RouteSet(ctx, "a.test", []string{"web-1"}, 80, ""); err == nil {
		t.Fatal("a change the local proxy did not take succeeded")
	}
}
