package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoutesByHost(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, a := testBackend(t, "a", nameHandler("a"))
		_, b := testBackend(t, "b", nameHandler("b"))
		p.Swap("a.test", a)
		p.Swap("B.Test", b)

		for host, want := range map[string]string{
			"a.test":       "a",
			"A.TEST:8080":  "a",
			"b.test":       "b",
			"b.test.":      "b",
			"b.TEST.:8443": "b",
		} {
			expect(t, get(t, srv, host), http.StatusOK, want)
		}
		if p.Current("A.test:80") != a || p.Current("b.test") != b {
			t.Fatal("Current does not return the swapped-in upstreams")
		}
	})
}

func TestForwardsHostAndClientAddress(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s|%s|%s|%s", r.Host, r.Header.Get("X-Forwarded-For"),
				r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"))
		}))
		p.Swap("app.test", up)

		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Host = "App.test:8080"
		req.Header.Set("X-Forwarded-For", "6.6.6.6") // a client's claim is not passed on
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if want := "App.test:8080|127.0.0.1|App.test:8080|http"; string(body) != want {
			t.Fatalf("upstream saw %q, want %q", body, want)
		}
	})
}

func TestUnknownHost(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", nameHandler("app"))
		p.Swap("app.test", up)

		res := get(t, srv, "other.test:8080")
		expect(t, res, http.StatusNotFound, "no app is served at other.test\n")
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

func TestKnownHostWithoutUpstream(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		p.AddHost("app.test")
		expect(t, get(t, srv, "app.test"), http.StatusServiceUnavailable, "no instance is serving app.test yet\n")

		_, up := testBackend(t, "app", nameHandler("app"))
		if old := p.Swap("app.test", up); old != nil {
			t.Fatalf("Swap replaced %v on a host without upstream", old.Name())
		}
		expect(t, get(t, srv, "app.test"), http.StatusOK, "app")
	})
}

func TestRemoveHost(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", nameHandler("app"))
		p.Swap("app.test", up)

		if old := p.RemoveHost("APP.test"); old != up {
			t.Fatalf("RemoveHost returned %v", old)
		}
		drain(t, up)
		expect(t, get(t, srv, "app.test"), http.StatusNotFound, "no app is served at app.test\n")
		if p.Current("app.test") != nil {
			t.Fatal("removed host still has an upstream")
		}
	})
}

func TestMaintenance(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		var calls atomic.Int64
		_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			io.WriteString(w, "app")
		}))
		p.Swap("app.test", up)

		p.SetMaintenance("app.test", "Back at 14:00.")
		res := get(t, srv, "app.test")
		expect(t, res, http.StatusServiceUnavailable, "Back at 14:00.\n")
		if res.header.Get("Retry-After") == "" {
			t.Fatal("maintenance page without Retry-After")
		}
		if calls.Load() != 0 {
			t.Fatal("a request reached the upstream during maintenance")
		}
		if p.Current("app.test") != up {
			t.Fatal("maintenance changed the upstream")
		}

		// A deploy during maintenance keeps the host in maintenance.
		_, next := testBackend(t, "next", nameHandler("next"))
		drain(t, p.Swap("app.test", next))
		expect(t, get(t, srv, "app.test"), http.StatusServiceUnavailable, "Back at 14:00.\n")

		p.ClearMaintenance("app.test")
		expect(t, get(t, srv, "app.test"), http.StatusOK, "next")

		p.SetMaintenance("app.test", "")
		expect(t, get(t, srv, "app.test"), http.StatusServiceUnavailable, "app.test is down for maintenance\n")
	})
}

// TestSwapUnderLoad is a series of deploys while clients keep sending requests: every
// request must succeed, and no request may reach an instance after its drain finished
// (the instance is stopped right after, as the daemon stops a replaced container).
func TestSwapUnderLoad(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()

		var late atomic.Int64 // requests that reached an instance after its drain
		type instance struct {
			name    string
			up      *Upstream
			stop    func()
			drained atomic.Bool
			served  atomic.Int64
		}
		start := func(i int) *instance {
			in := &instance{name: fmt.Sprintf("v%d", i)}
			backend, up := testBackend(t, in.name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if in.drained.Load() {
					late.Add(1)
				}
				if in.served.Add(1)%4 == 0 {
					time.Sleep(time.Millisecond) // keep some requests in flight across swaps
				}
				io.WriteString(w, in.name)
			}))
			in.up, in.stop = up, backend.Close
			return in
		}

		const deploys = 6
		instances := []*instance{start(0)}
		p.Swap("app.test", instances[0].up)
		valid := func(body string) bool {
			for i := range deploys + 1 {
				if body == fmt.Sprintf("v%d", i) {
					return true
				}
			}
			return false
		}

		var (
			stop     = make(chan struct{})
			wg       sync.WaitGroup
			total    atomic.Int64
			mu       sync.Mutex
			failures []string
		)
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
					if err != nil || res.status != http.StatusOK || !valid(res.body) {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%d %q %v", res.status, res.body, err))
						mu.Unlock()
					}
				}
			})
		}

		for i := 1; i <= deploys; i++ {
			if i%2 == 1 {
				// Odd deploys let traffic flow first; even ones follow the previous drain
				// back to back.
				time.Sleep(20 * time.Millisecond)
			}
			next := start(i)
			instances = append(instances, next)
			prev := instances[i-1]
			if old := p.Swap("app.test", next.up); old != prev.up {
				t.Errorf("Swap %d replaced %v, want %s", i, old, prev.name)
			}
			drain(t, prev.up)
			prev.drained.Store(true)
			prev.stop()
		}
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()

		if len(failures) > 0 {
			t.Fatalf("%d of %d requests failed, first: %s", len(failures), total.Load(), failures[0])
		}
		if n := late.Load(); n != 0 {
			t.Fatalf("%d requests reached an instance after its drain", n)
		}
		if last := instances[deploys]; last.served.Load() == 0 {
			t.Errorf("the last instance, %s, served no request", last.name)
		}
		t.Logf("%d requests, %d deploys, no failure", total.Load(), deploys)
	})
}

func TestDrainWaitsForInFlightRequest(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		started, finish := make(chan struct{}), make(chan struct{})
		_, slow := testBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-finish
			io.WriteString(w, "slow")
		}))
		p.Swap("app.test", slow)

		result := make(chan testResponse, 1)
		go func() { result <- get(t, srv, "app.test") }()
		<-started

		_, fast := testBackend(t, "fast", nameHandler("fast"))
		old := p.Swap("app.test", fast)
		drained := make(chan error, 1)
		go func() { drained <- old.Drain(context.Background()) }()

		// New requests go to the new instance while the old one finishes.
		expect(t, get(t, srv, "app.test"), http.StatusOK, "fast")
		select {
		case err := <-drained:
			t.Fatalf("Drain returned (%v) with a request in flight", err)
		case <-time.After(50 * time.Millisecond):
		}
		if n := old.InFlight(); n != 1 {
			t.Fatalf("%d requests in flight on the old instance, want 1", n)
		}

		close(finish)
		expect(t, <-result, http.StatusOK, "slow")
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
	})
}

func TestDrainGivesUpWhenContextEnds(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		started, finish := make(chan struct{}), make(chan struct{})
		_, stuck := testBackend(t, "stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-finish
		}))
		p.Swap("app.test", stuck)
		done := make(chan struct{})
		go func() { defer close(done); get(t, srv, "app.test") }()
		<-started

		p.RemoveHost("app.test")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if err := stuck.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain = %v, want deadline exceeded", err)
		}
		close(finish)
		<-done
	})
}

// A drained upstream that is still routed (Drain without Swap) answers 503 rather than
// sending requests to it, or looping.
func TestDrainedUpstreamStillRouted(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", nameHandler("app"))
		p.Swap("app.test", up)
		drain(t, up)
		expect(t, get(t, srv, "app.test"), http.StatusServiceUnavailable, "no instance is serving app.test yet\n")
	})
}

func TestUpstreamError(t *testing.T) {
	t.Run("dial", func(t *testing.T) {
		eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
			p.Swap("app.test", NewUpstream("down", func(ctx context.Context) (net.Conn, error) {
				return nil, errors.New("connection refused")
			}))
			expect(t, get(t, srv, "app.test"), http.StatusBadGateway, "the app serving app.test did not answer\n")
			if s := p.Stats(); s.UpstreamErrors != 1 || s.Requests != 1 || s.Retries != 1 {
				t.Fatalf("stats %+v, want 1 request, 1 retry, 1 upstream error", s)
			}
		})
	})
	t.Run("hang up", func(t *testing.T) {
		eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
			_, up := testBackend(t, "rude", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, _, _ := http.NewResponseController(w).Hijack()
				conn.Close()
			}))
			p.Swap("app.test", up)
			expect(t, get(t, srv, "app.test"), http.StatusBadGateway, "the app serving app.test did not answer\n")
			if s := p.Stats(); s.UpstreamErrors != 1 || s.Retries != 0 {
				t.Fatalf("stats %+v, want 1 upstream error and no retry", s)
			}
		})
	})
}

// A request that fails to connect to the upstream it loaded goes to the host's current
// upstream: here a deploy swaps in a new instance while the old one refuses connections.
func TestRetryGoesToCurrentUpstream(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, good := testBackend(t, "good", nameHandler("good"))
		gone := NewUpstream("gone", func(ctx context.Context) (net.Conn, error) {
			p.Swap("app.test", good)
			return nil, errors.New("connection refused")
		})
		p.Swap("app.test", gone)

		expect(t, get(t, srv, "app.test"), http.StatusOK, "good")
		if s := p.Stats(); s.Retries != 1 || s.UpstreamErrors != 0 {
			t.Fatalf("stats %+v, want 1 retry and no upstream error", s)
		}
		// Both holds were released: each drains at once.
		drain(t, gone)
		p.RemoveHost("app.test")
		drain(t, good)
	})
}

func TestRetryOnlyWithoutBody(t *testing.T) {
	flaky := func(t *testing.T, p *Proxy) {
		backend, _ := testBackend(t, "flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s", r.Method, b)
		}))
		var failed atomic.Bool
		dial := dialServer(backend)
		p.Swap("app.test", NewUpstream("flaky", func(ctx context.Context) (net.Conn, error) {
			if !failed.Swap(true) {
				return nil, errors.New("connection refused")
			}
			return dial(ctx)
		}))
	}

	t.Run("GET", func(t *testing.T) {
		eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
			flaky(t, p)
			expect(t, get(t, srv, "app.test"), http.StatusOK, "GET ")
		})
	})
	t.Run("POST without body", func(t *testing.T) {
		eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
			flaky(t, p)
			res, err := send(t, srv.Client(), srv, http.MethodPost, "app.test", "")
			if err != nil {
				t.Fatal(err)
			}
			expect(t, res, http.StatusOK, "POST ")
		})
	})
	t.Run("POST with body", func(t *testing.T) {
		eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
			flaky(t, p)
			res, err := send(t, srv.Client(), srv, http.MethodPost, "app.test", "payload")
			if err != nil {
				t.Fatal(err)
			}
			expect(t, res, http.StatusBadGateway, "the app serving app.test did not answer\n")
			if s := p.Stats(); s.Retries != 0 || s.UpstreamErrors != 1 {
				t.Fatalf("stats %+v, want no retry and 1 upstream error", s)
			}
			res, err = send(t, srv.Client(), srv, http.MethodPost, "app.test", "payload")
			if err != nil {
				t.Fatal(err)
			}
			expect(t, res, http.StatusOK, "POST payload")
		})
	})
}

func TestStatsCountRequests(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", nameHandler("app"))
		p.Swap("app.test", up)
		for range 3 {
			get(t, srv, "app.test")
		}
		get(t, srv, "unknown.test")
		if s := p.Stats(); s.Requests != 4 || s.UpstreamErrors != 0 {
			t.Fatalf("stats %+v, want 4 requests and no error", s)
		}
	})
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"app.test":          "app.test",
		"App.Test":          "app.test",
		"app.test:8080":     "app.test",
		"app.test.":         "app.test",
		"APP.test.:443":     "app.test",
		"[::1]:8080":        "[::1]",
		"[::1]":             "[::1]",
		"127.0.0.1:80":      "127.0.0.1",
		"":                  "",
		"xn--bcher-kva.tld": "xn--bcher-kva.tld",
	} {
		if got := canonicalHost(in); got != want {
			t.Errorf("canonicalHost(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { canonicalHost("app.test:8080") }); n != 0 {
		t.Errorf("canonicalHost allocates %v times for a canonical host with a port", n)
	}
}
