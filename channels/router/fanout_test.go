package router

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy/testcert"
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

// The other members' proxies get a copy of this host's certificates.
func TestFanoutCopiesCertificatesToTheOthers(t *testing.T) {
	b := newBackends(t, "web-1")
	_, local, localSrv := serve(t, b)
	_, other, otherSrv := serve(t, b)
	here, there := t.TempDir(), t.TempDir()
	localSrv.table.UseCertDir(here)
	otherSrv.table.UseCertDir(there)
	ca, _ := testcert.NewCA()
	crt, key, _ := ca.Issue(time.Time{}, "a.test")
	testcert.WritePair(here, "a.test", crt, key)
	os.WriteFile(filepath.Join(there, "stale.crt"), crt, 0o600) // gone from here: removed there
	f := &Fanout{Local: local, Others: map[string]*Client{"two": other}, CertDir: here}
	ctx := context.Background()
	if err := f.ReloadCerts(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := readCertDir(there)
	if len(got) != 2 || string(got["a.test.crt"]) != string(crt) || string(got["a.test.key"]) != string(key) {
		t.Fatalf("the other member's certificates: %v", keys(got))
	}
	if f.TakeStale() {
		t.Fatal("a copy that went through marked a member stale")
	}
	for _, bad := range []string{"../escape.crt", ".hidden.crt", "x.pem", "a/b.crt"} {
		if _, err := otherSrv.table.PutCerts(ctx, map[string][]byte{bad: crt}); err == nil {
			t.Errorf("PutCerts took %q", bad)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
