package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counted is a test backend answering its name, counting the requests that reach it.
type counted struct {
	name string
	up   *Upstream
	hits atomic.Int64
}

func countedBackend(t *testing.T, name string) *counted {
	c := &counted{name: name}
	_, c.up = testBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		io.WriteString(w, name)
	}))
	return c
}

func upstreamsOf(cs ...*counted) []*Upstream {
	ups := make([]*Upstream, len(cs))
	for i, c := range cs {
		ups[i] = c.up
	}
	return ups
}

// statOf returns the UpstreamStat named name, failing the test if there is none.
func statOf(t *testing.T, p *Proxy, name string) UpstreamStat {
	t.Helper()
	for _, s := range p.UpstreamStats() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stats for upstream %s in %+v", name, p.UpstreamStats())
	return UpstreamStat{}
}

func TestRequestsSpreadOverTheSet(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		a, b, c := countedBackend(t, "a"), countedBackend(t, "b"), countedBackend(t, "c")
		p.SwapSet("app.test", upstreamsOf(a, b, c))
		const n = 90
		for range n {
			if res := get(t, srv, "app.test"); res.status != http.StatusOK {
				t.Fatalf("got %d %q", res.status, res.body)
			}
		}
		var total uint64
		for _, in := range []*counted{a, b, c} {
			if in.hits.Load() == 0 {
				t.Errorf("%s got no request of %d", in.name, n)
			}
			s := statOf(t, p, in.name)
			if s.Requests != uint64(in.hits.Load()) || s.InFlight != 0 || s.Down {
				t.Errorf("stats of %s: %+v, backend saw %d", in.name, s, in.hits.Load())
			}
			total += s.Requests
		}
		if total != n {
			t.Errorf("the upstreams counted %d requests, want %d", total, n)
		}
	})
}

func TestSwapSetReturnsWhatLeftTheSet(t *testing.T) {
	p := New(testLogger(t))
	ups := map[string]*Upstream{}
	for _, name := range []string{"a", "b", "c", "d"} {
		ups[name] = NewUpstream(name, nil)
	}
	set := func(names ...string) []*Upstream {
		out := []*Upstream{}
		for _, n := range names {
			out = append(out, ups[n])
		}
		return out
	}
	for _, tc := range []struct {
		set, want, replaced []string
	}{
		{[]string{"a"}, []string{"a"}, nil},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}, nil},
		{[]string{"c", "b", "c"}, []string{"c", "b"}, []string{"a"}}, // a duplicate counts once
		{[]string{"d"}, []string{"d"}, []string{"c", "b"}},
		{nil, nil, []string{"d"}},
		{[]string{"a", "b"}, []string{"a", "b"}, nil},
	} {
		old := p.SwapSet("app.test", set(tc.set...))
		if got := namesOf(old); !slices.Equal(got, tc.replaced) {
			t.Errorf("SwapSet(%v) replaced %v, want %v", tc.set, got, tc.replaced)
		}
		if got := namesOf(p.Set("app.test")); !slices.Equal(got, tc.want) {
			t.Errorf("after SwapSet(%v) the set is %v, want %v", tc.set, got, tc.want)
		}
	}
	if cur := p.Current("app.test"); cur != ups["a"] {
		t.Errorf("Current is %v, want a", cur)
	}
	if old := p.Swap("app.test", ups["b"]); old != ups["a"] {
		t.Errorf("Swap to b, which stays, replaced %v, want a", old)
	}
	if old := p.RemoveHostSet("app.test"); !slices.Equal(namesOf(old), []string{"b"}) {
		t.Errorf("RemoveHostSet returned %v", namesOf(old))
	}
}

// A set of three shrinks to one and grows back to three under load: no request fails,
// and none reaches an instance after its drain.
func TestSwapSetUnderLoad(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		var late atomic.Int64
		type instance struct {
			up      *Upstream
			drained atomic.Bool
		}
		start := func(name string) *instance {
			in := &instance{}
			_, in.up = testBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if in.drained.Load() {
					late.Add(1)
				}
				time.Sleep(time.Duration(len(name)%2) * time.Millisecond)
				io.WriteString(w, name)
			}))
			return in
		}
		gen := func(g int) []*instance {
			return []*instance{start(fmt.Sprintf("v%d-1", g)), start(fmt.Sprintf("v%d-2", g)), start(fmt.Sprintf("v%d-3", g))}
		}
		ups := func(ins []*instance) []*Upstream {
			out := []*Upstream{}
			for _, in := range ins {
				out = append(out, in.up)
			}
			return out
		}

		first := gen(0)
		p.SwapSet("app.test", ups(first))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var total, failed atomic.Int64
		var firstFailure atomic.Value
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					res, err := send(t, client, srv, http.MethodGet, "app.test", "")
					total.Add(1)
					if err != nil || res.status != http.StatusOK {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", res.status, res.body, err))
					}
				}
			})
		}
		retire := func(old []*Upstream, from []*instance) {
			for _, up := range old {
				drain(t, up)
				for _, in := range from {
					if in.up == up {
						in.drained.Store(true)
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
		// 3 -> 1: two of the first generation go, one stays.
		old := p.SwapSet("app.test", ups(first[:1]))
		if len(old) != 2 {
			t.Errorf("3 -> 1 replaced %v", namesOf(old))
		}
		retire(old, first)
		time.Sleep(20 * time.Millisecond)
		// 1 -> 3 new ones.
		second := gen(1)
		old = p.SwapSet("app.test", ups(second))
		if len(old) != 1 || old[0] != first[0].up {
			t.Errorf("1 -> 3 replaced %v", namesOf(old))
		}
		retire(old, first)
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()

		if n := failed.Load(); n > 0 {
			t.Fatalf("%d of %d requests failed, first: %v", n, total.Load(), firstFailure.Load())
		}
		if n := late.Load(); n != 0 {
			t.Fatalf("%d requests reached an instance after its drain", n)
		}
		t.Logf("%d requests, no failure", total.Load())
	})
}

// An upstream whose dial fails is taken out of the set's choice, its requests going
// to the others, and comes back once it can be dialled.
func TestRefusingUpstreamIsTakenOutAndBack(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		a, b := countedBackend(t, "a"), countedBackend(t, "b")
		flaky := &counted{name: "flaky"}
		backend, _ := testBackend(t, "flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			flaky.hits.Add(1)
			io.WriteString(w, "flaky")
		}))
		var refusing atomic.Bool
		refusing.Store(true)
		dial := dialServer(backend)
		flaky.up = NewUpstream("flaky", func(ctx context.Context) (net.Conn, error) {
			if refusing.Load() {
				return nil, errors.New("connection refused")
			}
			return dial(ctx)
		})
		flaky.up.probeEvery = 10 * time.Millisecond
		p.SwapSet("app.test", upstreamsOf(a, flaky, b))
		t.Cleanup(func() { drain(t, flaky.up) })

		for i := range 60 {
			if res := get(t, srv, "app.test"); res.status != http.StatusOK || res.body == "flaky" {
				t.Fatalf("request %d: %d %q", i, res.status, res.body)
			}
		}
		s := statOf(t, p, "flaky")
		if !s.Down || s.Requests == 0 {
			t.Fatalf("flaky after refusing: %+v, want down after at least one request", s)
		}
		if r := p.Stats().Retries; r != s.Requests {
			t.Errorf("%d retries for %d requests sent to flaky", r, s.Requests)
		}
		for range 20 {
			get(t, srv, "app.test")
		}
		if n := statOf(t, p, "flaky").Requests; n != s.Requests {
			t.Errorf("flaky got %d requests while down", n-s.Requests)
		}

		refusing.Store(false)
		waitFor(t, "flaky back up", func() bool { return !statOf(t, p, "flaky").Down })
		waitFor(t, "a request on flaky", func() bool {
			if res := get(t, srv, "app.test"); res.status != http.StatusOK {
				t.Fatalf("got %d %q", res.status, res.body)
			}
			return flaky.hits.Load() > 0
		})
		if p.Stats().UpstreamErrors != 0 {
			t.Errorf("stats %+v, want no upstream error", p.Stats())
		}
	})
}

// resettingBackend is an app that reads a request head, then resets the connection.
func resettingBackend(t *testing.T) (*Upstream, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var heads atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						break
					}
					if line == "\r\n" {
						heads.Add(1)
						break
					}
				}
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}()
		}
	}()
	addr := ln.Addr().String()
	return NewUpstream("resetting", func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}), &heads
}

// A GET (or TRACE) that the app resets goes to another upstream; a POST with a body
// does not (the app may have acted on it).
func TestResetIsRetriedOnlyWhenSafe(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		good := countedBackend(t, "good")
		bad, heads := resettingBackend(t)
		p.SwapSet("app.test", []*Upstream{bad, good.up})

		// GET takes a connPool, TRACE http.Transport.
		for _, method := range []string{http.MethodGet, http.MethodTrace} {
			before := heads.Load()
			for range 30 {
				res, err := send(t, srv.Client(), srv, method, "app.test", "")
				if err != nil {
					t.Fatal(err)
				}
				expect(t, res, http.StatusOK, "good")
			}
			if heads.Load() == before {
				t.Fatalf("no %s reached the resetting upstream: nothing was retried", method)
			}
		}
		if r := p.Stats().Retries; r != uint64(heads.Load()) {
			t.Errorf("%d retries for %d resets", r, heads.Load())
		}

		var sawBad, sawGood bool
		for i := 0; i < 60 && !(sawBad && sawGood); i++ {
			badBefore, goodBefore := heads.Load(), good.hits.Load()
			res, err := send(t, srv.Client(), srv, http.MethodPost, "app.test", "payload")
			if err != nil {
				t.Fatal(err)
			}
			toBad, toGood := heads.Load()-badBefore, good.hits.Load()-goodBefore
			switch {
			case toBad == 1 && toGood == 0:
				sawBad = true
				expect(t, res, http.StatusBadGateway, "the app serving app.test did not answer\n")
			case toBad == 0 && toGood == 1:
				sawGood = true
				expect(t, res, http.StatusOK, "good")
			default:
				t.Fatalf("a POST reached the resetting upstream %d times and the good one %d times", toBad, toGood)
			}
		}
		if !sawBad || !sawGood {
			t.Fatalf("60 POSTs, to the resetting upstream: %v, to the good one: %v", sawBad, sawGood)
		}
	})
}

// healthBackend answers /health with the status in status, and anything else with
// its name.
func healthBackend(t *testing.T, name string, status *atomic.Int32) *counted {
	c := &counted{name: name}
	_, c.up = testBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if r.Host != "app.test" {
				t.Errorf("health check for host %q", r.Host)
			}
			w.WriteHeader(int(status.Load()))
			return
		}
		c.hits.Add(1)
		io.WriteString(w, name)
	}))
	return c
}

func TestActiveHealthTakesOutAndBack(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		p.healthEvery = 10 * time.Millisecond
		var sickStatus, wellStatus atomic.Int32
		sickStatus.Store(http.StatusInternalServerError)
		wellStatus.Store(http.StatusNoContent)
		sick, well := healthBackend(t, "sick", &sickStatus), healthBackend(t, "well", &wellStatus)
		p.SwapSet("app.test", upstreamsOf(sick, well))
		p.SetHealth("app.test", "health")
		t.Cleanup(func() { p.RemoveHostSet("app.test"); drain(t, sick.up); drain(t, well.up) })

		waitFor(t, "sick marked down", func() bool { return statOf(t, p, "sick").Down })
		if statOf(t, p, "well").Down {
			t.Fatal("the healthy upstream is down")
		}
		before := sick.hits.Load()
		for range 30 {
			expect(t, get(t, srv, "app.test"), http.StatusOK, "well")
		}
		if n := sick.hits.Load() - before; n != 0 {
			t.Fatalf("the unhealthy upstream got %d requests", n)
		}

		sickStatus.Store(http.StatusOK)
		waitFor(t, "sick back up", func() bool { return !statOf(t, p, "sick").Down })
		waitFor(t, "a request on sick", func() bool {
			get(t, srv, "app.test")
			return sick.hits.Load() > before
		})
	})
}

// A health check's failures mark an upstream down only for a route with several.
func TestHealthChecksOnlyForSets(t *testing.T) {
	p := New(testLogger(t))
	p.healthEvery = 5 * time.Millisecond
	var status atomic.Int32
	status.Store(http.StatusOK)
	a, b := healthBackend(t, "a", &status), healthBackend(t, "b", &status)
	p.SetHealth("app.test", "/health")
	p.Swap("app.test", a.up)
	if n := a.up.probing.Load(); n != 0 {
		t.Fatalf("%d probes for a route with one upstream", n)
	}
	p.SwapSet("app.test", upstreamsOf(a, b))
	if a.up.probing.Load() != 1 || b.up.probing.Load() != 1 {
		t.Fatalf("probes: a %d, b %d, want one each", a.up.probing.Load(), b.up.probing.Load())
	}
	stopped := func() bool { return a.up.probing.Load() == 0 && b.up.probing.Load() == 0 }
	p.SetHealth("app.test", "")
	waitFor(t, "probes to stop without a health path", stopped)
	p.SetHealth("app.test", "/health")
	if a.up.probing.Load() != 1 || b.up.probing.Load() != 1 {
		t.Fatalf("probes: a %d, b %d, want one each again", a.up.probing.Load(), b.up.probing.Load())
	}
	if old := p.SwapSet("app.test", upstreamsOf(a)); len(old) != 1 || old[0] != b.up {
		t.Fatalf("shrinking to one replaced %v", namesOf(old))
	}
	waitFor(t, "probes to stop with one upstream", stopped)
}

// Drain stops every probe of its upstream, active and passive, and no new one starts.
func TestDrainStopsProbes(t *testing.T) {
	p := New(testLogger(t))
	p.healthEvery = 5 * time.Millisecond
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	var checks atomic.Int64
	a := healthBackend(t, "a", &status)
	_, b := testBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
	}))
	dead := NewUpstream("dead", func(ctx context.Context) (net.Conn, error) { return nil, errors.New("connection refused") })
	dead.probeEvery = 5 * time.Millisecond
	p.SwapSet("app.test", []*Upstream{a.up, b, dead})
	p.SetHealth("app.test", "/health")
	dead.markDown()
	waitFor(t, "checks on b", func() bool { return checks.Load() >= 2 })
	if dead.probing.Load() != 2 {
		t.Fatalf("dead runs %d probes, want its dial probe and its health check", dead.probing.Load())
	}

	// Drained while still routed: its probes end all the same.
	for _, up := range []*Upstream{a.up, b, dead} {
		drain(t, up)
		if n := up.probing.Load(); n != 0 {
			t.Errorf("%s runs %d probes after Drain", up.Name(), n)
		}
	}
	// A check sent just before Drain may still be on its way in: let it land.
	time.Sleep(20 * time.Millisecond)
	seen := checks.Load()
	time.Sleep(50 * time.Millisecond)
	if n := checks.Load() - seen; n != 0 {
		t.Errorf("%d health checks reached b after its Drain", n)
	}
	dead.down.Store(false)
	dead.markDown()
	p.SetHealth("app.test", "/other")
	if n := dead.probing.Load(); n != 0 {
		t.Errorf("a drained upstream started %d probes", n)
	}
}

func TestPick(t *testing.T) {
	type state struct{ down, unhealthy, draining bool }
	for _, tc := range []struct {
		name   string
		states []state
		avoid  int   // index of the upstream to avoid, or -1
		want   []int // the indexes pick may return; none: nil
	}{
		{"one", []state{{}}, -1, []int{0}},
		{"one down is still picked", []state{{down: true}}, -1, []int{0}},
		{"one avoided", []state{{}}, 0, nil},
		{"one draining is the caller's to tell", []state{{draining: true}}, -1, []int{0}},
		{"skips down", []state{{down: true}, {}, {down: true}}, -1, []int{1}},
		{"skips unhealthy", []state{{unhealthy: true}, {unhealthy: true}, {}}, -1, []int{2}},
		{"skips avoided", []state{{}, {}}, 0, []int{1}},
		{"all down: any", []state{{down: true}, {unhealthy: true}}, -1, []int{0, 1}},
		{"all down but avoided", []state{{down: true}, {down: true}}, 1, []int{0}},
		{"only draining left", []state{{draining: true}, {}}, 1, nil},
		{"up over draining", []state{{draining: true}, {down: true}, {}}, -1, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &route{}
			for i, s := range tc.states {
				up := NewUpstream(fmt.Sprint(i), nil)
				up.down.Store(s.down)
				if s.draining {
					up.state.Or(draining)
				}
				f := &forwarder{upstream: up}
				hc := &healthCheck{}
				hc.unhealthy.Store(s.unhealthy)
				f.check.Store(hc)
				rt.forwarders = append(rt.forwarders, f)
			}
			var avoid *Upstream
			if tc.avoid >= 0 {
				avoid = rt.forwarders[tc.avoid].upstream
			}
			got := map[int]bool{}
			for range 100 {
				f := rt.pick(avoid, nil)
				if f == nil {
					got[-1] = true
					continue
				}
				got[rt.index(f.upstream)] = true
			}
			want := map[int]bool{}
			for _, i := range tc.want {
				want[i] = true
			}
			if len(tc.want) == 0 {
				want[-1] = true
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("picked %v, want %v", got, want)
			}
		})
	}
}

// An upstream alone whose acquire failed is not picked again.
func TestPickAloneDrained(t *testing.T) {
	up := NewUpstream("app", nil)
	rt := &route{forwarders: []*forwarder{{upstream: up}}}
	if f := rt.pick(nil, up); f != nil {
		t.Fatal("picked the upstream just found draining")
	}
}

// Of two upstreams, the one with fewer requests in flight is picked.
func TestPickPrefersFewerInFlight(t *testing.T) {
	busy, idle := NewUpstream("busy", nil), NewUpstream("idle", nil)
	for range 5 {
		busy.acquire()
	}
	rt := &route{forwarders: []*forwarder{{upstream: busy}, {upstream: idle}}}
	for range 50 {
		if f := rt.pick(nil, nil); f.upstream != idle {
			t.Fatal("picked the busier upstream")
		}
	}
}
