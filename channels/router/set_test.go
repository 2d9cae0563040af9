package router

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/channels/proxy"
)

// names returns the names of ups.
func names(ups []*proxy.Upstream) []string {
	out := []string{}
	for _, up := range ups {
		out = append(out, up.Name())
	}
	return out
}

func TestRouteSetReturnsTheInstancesReplaced(t *testing.T) {
	b := newBackends(t, "web-1", "web-2", "web-3", "web-4")
	px := proxy.New(nil)
	tbl := New(px, b.dial)
	ctx := context.Background()
	for _, tc := range []struct {
		set, want, replaced []string
	}{
		{[]string{"web-1"}, []string{"web-1"}, nil},
		{[]string{"web-1", "web-2", "web-3"}, []string{"web-1", "web-2", "web-3"}, nil},
		{[]string{"web-2", "web-4", "web-2"}, []string{"web-2", "web-4"}, []string{"web-1", "web-3"}},
		{[]string{"web-4"}, []string{"web-4"}, []string{"web-2"}},
	} {
		replaced, err := tbl.RouteSet(ctx, "a.test", tc.set, 80, "/up")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(replaced, tc.replaced) {
			t.Errorf("RouteSet(%v) replaced %v, want %v", tc.set, replaced, tc.replaced)
		}
		if got := names(px.Set("a.test")); !slices.Equal(got, tc.want) {
			t.Errorf("RouteSet(%v): the proxy serves %v, want %v", tc.set, got, tc.want)
		}
		routes, _ := tbl.Routes(ctx)
		if r := routes[0]; !slices.Equal(r.Instances, tc.want) || r.Instance != tc.want[0] || r.Health != "/up" {
			t.Errorf("RouteSet(%v): route %+v", tc.set, r)
		}
	}
	for _, bad := range [][]string{nil, {}, {"web-1", ""}} {
		if _, err := tbl.RouteSet(ctx, "a.test", bad, 80, ""); err == nil {
			t.Errorf("RouteSet(%q) was taken", bad)
		}
	}

	// An instance still in another host's set is not drained.
	tbl.RouteSet(ctx, "b.test", []string{"web-1", "web-4"}, 80, "")
	if old, _ := tbl.Route(ctx, "a.test", "web-3", 80); old != "web-4" {
		t.Errorf("Route replaced %q, want web-4", old)
	}
	tbl.Drain(ctx, "web-4")
	fromWeb4 := 0
	for range 40 {
		if _, body := get(px, "b.test", "/"); body == "from web-4" {
			fromWeb4++
		}
	}
	if fromWeb4 == 0 {
		t.Errorf("web-4 serves no request: drained while b.test routes to it")
	}
	if old, err := tbl.RemoveHostSet(ctx, "b.test"); err != nil || !slices.Equal(old, []string{"web-1", "web-4"}) {
		t.Errorf("RemoveHostSet: %v %v", old, err)
	}
}

func TestStateFileKeepsSets(t *testing.T) {
	b := newBackends(t, "web-1", "web-2", "web-3")
	state := filepath.Join(t.TempDir(), "routes.json")
	ctx := context.Background()
	tbl, err := Open(proxy.New(nil), b.dial, state)
	if err != nil {
		t.Fatal(err)
	}
	tbl.RouteSet(ctx, "a.test", []string{"web-1", "web-2", "web-3"}, 8080, "/healthz")
	tbl.Route(ctx, "b.test", "web-2", 80)

	data, _ := os.ReadFile(state)
	var raw struct {
		Routes []map[string]any `json:"routes"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, r := range raw.Routes {
		if r["instance"] == nil || r["instances"] == nil {
			t.Errorf("the state file holds %v, want both instance and instances", r)
		}
	}

	px2 := proxy.New(nil)
	tbl2, err := Open(px2, b.dial, state)
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := tbl2.Routes(ctx)
	want := []Route{
		{Host: "a.test", Instance: "web-1", Instances: []string{"web-1", "web-2", "web-3"}, Health: "/healthz", Port: 8080},
		{Host: "b.test", Instance: "web-2", Instances: []string{"web-2"}, Port: 80},
	}
	if len(routes) != len(want) {
		t.Fatalf("routes after a restart: %+v", routes)
	}
	for i := range want {
		if !routesEqual(routes[i], want[i]) {
			t.Errorf("route %d after a restart: %+v, want %+v", i, routes[i], want[i])
		}
	}
	if got := names(px2.Set("a.test")); !slices.Equal(got, want[0].Instances) {
		t.Errorf("after a restart the proxy serves a.test from %v", got)
	}
}

func routesEqual(a, b Route) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// A state file written before sets, with instance alone, serves as a set of one.
func TestOldStateFileWithInstanceOnly(t *testing.T) {
	b := newBackends(t, "web-1", "web-2")
	state := filepath.Join(t.TempDir(), "routes.json")
	old := `{"version": 1, "routes": [{"host": "a.test", "instance": "web-1", "port": 80}, {"host": "b.test"}]}`
	if err := os.WriteFile(state, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	px := proxy.New(nil)
	tbl, err := Open(px, b.dial, state)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	routes, _ := tbl.Routes(ctx)
	if len(routes) != 2 || !slices.Equal(routes[0].Instances, []string{"web-1"}) || routes[0].Instance != "web-1" ||
		routes[1].Instances != nil || routes[1].Instance != "" {
		t.Fatalf("routes from an old state file: %+v", routes)
	}
	if code, body := get(px, "a.test", "/"); code != 200 || body != "from web-1" {
		t.Errorf("a.test answers %d %q", code, body)
	}
	if code, _ := get(px, "b.test", "/"); code != 503 {
		t.Errorf("b.test, known without instance, answers %d", code)
	}
	if replaced, _ := tbl.RouteSet(ctx, "a.test", []string{"web-1", "web-2"}, 80, ""); len(replaced) != 0 {
		t.Errorf("growing the set replaced %v", replaced)
	}
}

func TestClientRouteSetOverTheSocket(t *testing.T) {
	b := newBackends(t, "web-1", "web-2", "web-3")
	px, c, _ := serve(t, b)
	ctx := context.Background()
	if replaced, err := c.RouteSet(ctx, "a.test", []string{"web-1", "web-2", "web-3"}, 80, "/up"); err != nil || len(replaced) != 0 {
		t.Fatalf("RouteSet: %v %v", replaced, err)
	}
	seen := map[string]int{}
	for range 60 {
		_, body := get(px, "a.test", "/")
		seen[body]++
	}
	if len(seen) != 3 {
		t.Errorf("60 requests reached %v, want all three instances", seen)
	}
	stats, err := c.UpstreamStats(ctx)
	if err != nil || len(stats) != 3 {
		t.Fatalf("upstream stats: %+v %v", stats, err)
	}
	for _, s := range stats {
		if want := seen["from "+s.Name]; s.Requests != uint64(want) || s.InFlight != 0 || s.Down {
			t.Errorf("stats of %s: %+v, want %d requests", s.Name, s, want)
		}
	}
	routes, _ := c.Routes(ctx)
	if len(routes) != 1 || len(routes[0].Instances) != 3 || routes[0].Health != "/up" {
		t.Errorf("routes: %+v", routes)
	}

	replaced, err := c.RouteSet(ctx, "a.test", []string{"web-2"}, 80, "")
	if err != nil || !slices.Equal(replaced, []string{"web-1", "web-3"}) {
		t.Fatalf("shrinking to web-2 replaced %v (%v)", replaced, err)
	}
	for _, name := range replaced {
		if err := c.Drain(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	// A client that knows only instance.
	if old, err := c.Route(ctx, "a.test", "web-1", 80); err != nil || old != "web-2" {
		t.Errorf("Route: %q %v", old, err)
	}
	if _, err := c.RouteSet(ctx, "a.test", nil, 80, ""); err == nil || !strings.Contains(err.Error(), "bad instances") {
		t.Errorf("an empty set: %v", err)
	}
	c.RouteSet(ctx, "a.test", []string{"web-1", "web-3"}, 80, "")
	if old, err := c.RemoveHostSet(ctx, "a.test"); err != nil || !slices.Equal(old, []string{"web-1", "web-3"}) {
		t.Errorf("RemoveHostSet: %v %v", old, err)
	}
}

// What an older server answers (replaced alone) reads as a set of one.
func TestReplacedAll(t *testing.T) {
	for _, tc := range []struct {
		r    response
		want []string
	}{
		{response{}, nil},
		{response{Replaced: "web-1"}, []string{"web-1"}},
		{response{Replaced: "web-1", ReplacedAll: []string{"web-1", "web-2"}}, []string{"web-1", "web-2"}},
	} {
		if got := replacedAll(tc.r); !slices.Equal(got, tc.want) {
			t.Errorf("replacedAll(%+v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}
