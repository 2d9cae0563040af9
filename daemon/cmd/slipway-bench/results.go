package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// metric is one figure of the table and of latest.json.
type metric struct {
	key    string  // latest.json key
	label  string  // table row
	unit   string  // "s", "×", "MB", ...
	target string  // "≤ 1.0", "" for none
	limit  float64 // the target's bound
	atMost bool    // the target is an upper bound (else a lower one)
	digits int     // decimals shown
}

var metrics = []metric{
	{"push_to_live_s", "push to live, static app", "s", "≤ 0.25 s", 0.25, true, 2},
	{"push_returns_s", "git push returns, static app", "s", "", 0, true, 2},
	{"push_returns_after_live_s", "git push returns after the new commit serves", "s", "≤ 0.1 s", 0.1, true, 2},
	{"rollback_s", "rollback (pin a commit deployed before)", "s", "≤ 0.25 s", 0.25, true, 2},
	{"pin_returns_after_live_s", "ssh pin returns after the commit serves", "s", "≤ 0.1 s", 0.1, true, 2},
	{"failed_requests", "failed requests per deploy, under load", "", "0", 0, true, 0},
	{"resilience_failed_requests", "failed requests per daemon kill or restart, or proxy upgrade", "", "0", 0, true, 0},
	{"deploy_1_instance_s", "deploy of one instance (same rounds as three)", "s", "", 0, true, 2},
	{"deploy_3_instances_s", "deploy of three instances", "s", "", 0, true, 2},
	{"deploy_3_vs_1", "deploy of three instances ÷ of one", "×", "≤ 1.5×", 1.5, true, 2},
	{"incus_3_vs_1", "floor: Incus alone, 3 create+starts at once ÷ one", "×", "", 0, true, 2},
	{"failed_requests_deploy_3", "failed requests, deploys of three instances under load", "", "0", 0, true, 0},
	{"failed_requests_rolling_3", "failed requests, rolling deploys (--surge 1) of three", "", "0", 0, true, 0},
	{"rolling_deploy_3_s", "rolling deploy (--surge 1) of three, push returns", "s", "", 0, true, 2},
	{"proxy_kill_gap_s", "gap after kill -9 of the proxy (to its last failed request)", "s", "≤ 1.0 s", 1.0, true, 3},
	{"proxy_rps_vs_nginx", "proxy req/s ÷ nginx req/s", "×", "≥ 0.9×", 0.9, false, 2},
	{"https_rps_vs_nginx", "proxy HTTPS req/s ÷ nginx HTTPS req/s, keep-alive", "×", "≥ 0.9×", 0.9, false, 2},
	{"tls_handshakes_vs_nginx", "new TLS handshakes/s, proxy ÷ nginx", "×", "", 0, false, 2},
	{"tls_handshake_cpu_vs_nginx", "server CPU per new TLS handshake, proxy ÷ nginx", "×", "", 0, true, 2},
	{"proxy_p99_vs_direct", "proxy p99 ÷ direct p99 at fixed rate", "×", "≤ 1.2×", 1.2, true, 2},
	{"proxy_cpu_us_per_req", "proxy CPU per request", "µs", "", 0, true, 1},
	{"nginx_cpu_us_per_req", "nginx CPU per request (master and workers)", "µs", "", 0, true, 1},
	{"proxy_cpu_vs_nginx", "proxy CPU per request ÷ nginx's", "×", "≤ 1.0×", 1.0, true, 2},
	{"big_push_ratio", "large first push ÷ C git over OpenSSH", "×", "≤ 1.0×", 1.0, true, 2},
	{"big_push_rss_mb", "large first push, server peak RSS", "MB", "≤ 64 MB", 64, true, 1},
	{"parallel10_ratio", "10 parallel deploys ÷ one deploy", "×", "", 0, true, 2},
	{"python_push_to_live_s", "push to live, Python example on slipway/debian", "s", "≤ 1.5 s", 1.5, true, 2},
	{"go_build_cold_s", "go build of the Go example, emptied cache", "s", "", 0, true, 2},
	{"go_build_warm_s", "go build of the Go example, warm cache", "s", "", 0, true, 2},
	{"go_build_warm_vs_cold", "go build warm ÷ cold", "×", "", 0, true, 2},
	{"parallel10_vs_incus", "10 parallel deploys ÷ Incus's own 10 create+starts", "×", "≤ 1.1×", 1.1, true, 2},
}

// summary is one latest.json value.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// results collects every run's figures, notes for the table and failures.
type results struct {
	mu     sync.Mutex
	values map[string][]float64
	notes  map[string][]string
	failed map[string]string // item -> error
}

func newResults() *results {
	return &results{values: map[string][]float64{}, notes: map[string][]string{}, failed: map[string]string{}}
}

func (r *results) add(key string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[key] = append(r.values[key], v)
}

// note adds a line printed under the table for key.
func (r *results) note(key, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes[key] = append(r.notes[key], fmt.Sprintf(format, args...))
}

func (r *results) fail(item string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[item] = err.Error()
}

func summarize(vs []float64) summary {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return summary{}
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return summary{Median: round(med, 4), Min: round(s[0], 4), Max: round(s[n-1], 4), Runs: n}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// met reports whether a summary meets m's target. Failed requests must be 0
// in every run, so their max is what is checked.
func (m metric) met(s summary) bool {
	v := s.Median
	if strings.HasPrefix(m.key, "failed_requests") || m.key == "resilience_failed_requests" {
		v = s.Max
	}
	if m.atMost {
		return v <= m.limit
	}
	return v >= m.limit
}

// report prints the table to stdout and writes latest.json and latest.txt.
func (b *bench) report(elapsed time.Duration, runErr error) {
	r := b.results
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]summary{}
	var sb strings.Builder
	fmt.Fprintf(&sb, "slipway bench, %s, %d CPUs, took %s; load average at start %s, at end %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), elapsed.Round(time.Second), b.loadStart, loadAvg())
	fmt.Fprintf(&sb, "daemon started with --max-parallel %d (slipway's default is 4) for the 10 parallel deploys\n", b.cfg.MaxParallel)
	if busy(b.loadStart) {
		fmt.Fprintf(&sb, "WARNING: the machine was busy when the bench started (1-minute load average above %.1f): the figures are not reliable, run again on an idle machine\n", busyLoad)
	}
	sb.WriteString("\n")
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tmedian\trange (min–max)\truns\ttarget\t")
	for _, m := range metrics {
		vs := r.values[m.key]
		if len(vs) == 0 {
			fmt.Fprintf(tw, "%s\t—\t—\t0\t%s\tnot measured\t\n", m.label, orDash(m.target))
			continue
		}
		s := summarize(vs)
		out[m.key] = s
		mark := ""
		if m.target != "" {
			mark = "✓"
			if !m.met(s) {
				mark = "✗"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s–%s\t%d\t%s\t%s\t\n", m.label, format(s.Median, m), format(s.Min, m), format(s.Max, m), s.Runs, orDash(m.target), mark)
	}
	tw.Flush()
	sb.WriteString("\n")
	for _, m := range metrics {
		for _, n := range r.notes[m.key] {
			fmt.Fprintf(&sb, "  %s: %s\n", m.key, n)
		}
	}
	items := make([]string, 0, len(r.failed))
	for item := range r.failed {
		items = append(items, item)
	}
	sort.Strings(items)
	for _, item := range items {
		fmt.Fprintf(&sb, "  FAILED %s: %s\n", item, firstLine(r.failed[item]))
	}
	if runErr != nil && len(items) == 0 {
		fmt.Fprintf(&sb, "  FAILED: %s\n", firstLine(runErr.Error()))
	}
	fmt.Fprintf(&sb, "\nJSON: %s; run log: %s; daemon log: %s\n",
		filepath.Join(b.cfg.OutDir, "latest.json"), filepath.Join(b.cfg.OutDir, "latest.log"), filepath.Join(b.cfg.OutDir, "daemon.log"))
	fmt.Print("\n" + sb.String())

	if data, err := json.MarshalIndent(out, "", "  "); err == nil {
		if err := os.WriteFile(filepath.Join(b.cfg.OutDir, "latest.json"), append(data, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "slipway-bench:", err)
		}
	}
	os.WriteFile(filepath.Join(b.cfg.OutDir, "latest.txt"), []byte(sb.String()), 0o644)
}

func format(v float64, m metric) string {
	s := fmt.Sprintf("%.*f", m.digits, v)
	switch m.unit {
	case "":
		return s
	case "×":
		return s + "×"
	}
	return s + " " + m.unit
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// busyLoad is the 1-minute load average at the start above which the
// machine was not idle (building slipway just before adds about 1).
const busyLoad = 2.0

func busy(loadavg string) bool {
	var one float64
	if _, err := fmt.Sscanf(loadavg, "%f", &one); err != nil {
		return false
	}
	return one > busyLoad
}
