package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// metricsHandler serves /metrics in the Prometheus text format. It is written
// by hand: a few counters and one histogram do not justify a client library.
func (d *Daemon) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		b := bufio.NewWriter(w)
		defer b.Flush()

		counts, err := d.store.CountOperations(r.Context())
		if err != nil {
			http.Error(w, "metrics are not available right now", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(b, "# HELP slipway_operations Operations recorded, by type and status.")
		fmt.Fprintln(b, "# TYPE slipway_operations gauge")
		for _, c := range counts {
			fmt.Fprintf(b, "slipway_operations{type=%q,status=%q} %d\n", c.Type, c.Status, c.Count)
		}

		fmt.Fprintln(b, "# HELP slipway_operation_duration_seconds Duration of operations run since the daemon started.")
		fmt.Fprintln(b, "# TYPE slipway_operation_duration_seconds histogram")
		types, hists := d.engine.Durations()
		for i, t := range types {
			h := hists[i]
			for j, bound := range h.Buckets {
				fmt.Fprintf(b, "slipway_operation_duration_seconds_bucket{type=%q,le=%q} %d\n", t, strconv.FormatFloat(bound, 'g', -1, 64), h.Counts[j])
			}
			fmt.Fprintf(b, "slipway_operation_duration_seconds_bucket{type=%q,le=\"+Inf\"} %d\n", t, h.Count)
			fmt.Fprintf(b, "slipway_operation_duration_seconds_sum{type=%q} %g\n", t, h.Sum)
			fmt.Fprintf(b, "slipway_operation_duration_seconds_count{type=%q} %d\n", t, h.Count)
		}

		st, err := d.proxy.Client().Stats(r.Context())
		up := 1
		if err != nil {
			up = 0
		}
		fmt.Fprintln(b, "# HELP slipway_proxy_up Whether the proxy process answers the daemon (its counters below are since it started).")
		fmt.Fprintln(b, "# TYPE slipway_proxy_up gauge")
		fmt.Fprintf(b, "slipway_proxy_up %d\n", up)
		if err == nil {
			fmt.Fprintln(b, "# HELP slipway_proxy_requests_total Requests the front proxy received.")
			fmt.Fprintln(b, "# TYPE slipway_proxy_requests_total counter")
			fmt.Fprintf(b, "slipway_proxy_requests_total %d\n", st.Requests)
			fmt.Fprintln(b, "# HELP slipway_proxy_upstream_errors_total Requests that failed reaching an instance.")
			fmt.Fprintln(b, "# TYPE slipway_proxy_upstream_errors_total counter")
			fmt.Fprintf(b, "slipway_proxy_upstream_errors_total %d\n", st.UpstreamErrors)
			fmt.Fprintln(b, "# HELP slipway_proxy_client_errors_total Requests refused for the client's fault: a malformed or too slow body.")
			fmt.Fprintln(b, "# TYPE slipway_proxy_client_errors_total counter")
			fmt.Fprintf(b, "slipway_proxy_client_errors_total %d\n", st.ClientErrors)
			fmt.Fprintln(b, "# HELP slipway_proxy_refused_connections_total Client connections closed at once: their address had as many open as --proxy-max-conns-per-ip.")
			fmt.Fprintln(b, "# TYPE slipway_proxy_refused_connections_total counter")
			fmt.Fprintf(b, "slipway_proxy_refused_connections_total %d\n", st.RefusedConns)
			d.writeUpstreamStats(r.Context(), b)
		}

		if left, err := d.store.Leftovers(r.Context()); err == nil {
			fmt.Fprintln(b, "# HELP slipway_leftover_instances Old instances whose deletion after a swap failed; housekeeping retries them.")
			fmt.Fprintln(b, "# TYPE slipway_leftover_instances gauge")
			fmt.Fprintf(b, "slipway_leftover_instances %d\n", len(left))
		}

		insts, _ := d.store.Installations(r.Context(), "")
		serving := 0
		for _, i := range insts {
			if i.State == store.StateRunning {
				serving += len(i.Members)
			}
		}
		backups, lastVerified, err := d.store.BackupStats(r.Context())
		if err == nil {
			fmt.Fprintln(b, "# HELP slipway_backups Backups kept, by the result of their test restore.")
			fmt.Fprintln(b, "# TYPE slipway_backups gauge")
			for _, state := range []string{store.BackupVerified, store.BackupFailed} {
				fmt.Fprintf(b, "slipway_backups{state=%q} %d\n", state, backups[state])
			}
			fmt.Fprintln(b, "# HELP slipway_backup_last_verified_timestamp_seconds When the newest verified backup was verified (0: never).")
			fmt.Fprintln(b, "# TYPE slipway_backup_last_verified_timestamp_seconds gauge")
			var ts int64
			if !lastVerified.IsZero() {
				ts = lastVerified.Unix()
			}
			fmt.Fprintf(b, "slipway_backup_last_verified_timestamp_seconds %d\n", ts)
		}

		if expiries := d.engine.CertificateExpiries(); len(expiries) > 0 {
			fmt.Fprintln(b, "# HELP slipway_certificate_expiry_timestamp_seconds When each certificate the proxy serves expires.")
			fmt.Fprintln(b, "# TYPE slipway_certificate_expiry_timestamp_seconds gauge")
			domains := make([]string, 0, len(expiries))
			for dom := range expiries {
				domains = append(domains, dom)
			}
			sort.Strings(domains)
			for _, dom := range domains {
				fmt.Fprintf(b, "slipway_certificate_expiry_timestamp_seconds{domain=%q} %d\n", dom, expiries[dom].Unix())
			}
		}

		fmt.Fprintln(b, "# HELP slipway_instances_running Instances serving an installation.")
		fmt.Fprintln(b, "# TYPE slipway_instances_running gauge")
		fmt.Fprintf(b, "slipway_instances_running %d\n", serving)
		d.writeInstanceStates(r.Context(), b)
	})
}

// writeInstanceStates writes every installation's instances by state.
func (d *Daemon) writeInstanceStates(ctx context.Context, b io.Writer) {
	states, err := d.engine.InstanceStates(ctx)
	if err != nil {
		return
	}
	fmt.Fprintln(b, "# HELP slipway_installation_instances An installation's instances by state (starting, serving, running, draining, stopped).")
	fmt.Fprintln(b, "# TYPE slipway_installation_instances gauge")
	resources := make([]string, 0, len(states))
	for res := range states {
		resources = append(resources, res)
	}
	sort.Strings(resources)
	for _, res := range resources {
		for _, state := range []string{channels.InstanceStarting, channels.InstanceServing, channels.InstanceRunning, channels.InstanceDraining, channels.InstanceStopped} {
			fmt.Fprintf(b, "slipway_installation_instances{installation=%q,state=%q} %d\n", res, state, states[res][state])
		}
	}
}

// writeUpstreamStats writes the proxy's counters of each instance it routes to.
func (d *Daemon) writeUpstreamStats(ctx context.Context, b io.Writer) {
	ups, err := d.proxy.Client().UpstreamStats(ctx)
	if err != nil {
		return
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].Name < ups[j].Name })
	fmt.Fprintln(b, "# HELP slipway_proxy_upstream_requests_total Requests the front proxy sent to each instance it routes to.")
	fmt.Fprintln(b, "# TYPE slipway_proxy_upstream_requests_total counter")
	for _, u := range ups {
		fmt.Fprintf(b, "slipway_proxy_upstream_requests_total{upstream=%q} %d\n", u.Name, u.Requests)
	}
	fmt.Fprintln(b, "# HELP slipway_proxy_upstream_down Whether the proxy has taken an instance out of its choice (refused connections or failed health checks).")
	fmt.Fprintln(b, "# TYPE slipway_proxy_upstream_down gauge")
	for _, u := range ups {
		down := 0
		if u.Down {
			down = 1
		}
		fmt.Fprintf(b, "slipway_proxy_upstream_down{upstream=%q} %d\n", u.Name, down)
	}
}
