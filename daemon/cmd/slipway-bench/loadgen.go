package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// openLoop is a small open-loop load generator: requests are sent at fixed
// times (Rate per second) whether or not earlier ones have answered, and
// each latency is measured from the time the request was due, so a stall
// shows up in the latencies instead of slowing the load down (no coordinated
// omission). It is bounded in time (MaxDuration), in count
// (Rate×MaxDuration) and in requests in flight (MaxInFlight; a request due
// while that many are in flight fails as "generator saturated").
type openLoop struct {
	URL         string
	Host        string // Host header; empty: the URL's
	Rate        float64
	MaxDuration time.Duration
	MaxInFlight int
	Timeout     time.Duration                               // per request
	Check       func(res *http.Response, body []byte) error // nil: any 2xx
	Client      *http.Client                                // nil: a new one with its own connections
}

// newLoadClient is an HTTP client with room for maxInFlight kept-alive connections.
func newLoadClient(maxInFlight int, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        maxInFlight,
		MaxIdleConnsPerHost: maxInFlight,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

type loadResult struct {
	start   time.Time // when the request was due
	latency time.Duration
	err     error
}

var errSaturated = errors.New("generator saturated: too many requests in flight")

// run sends requests until stop is closed, ctx ends or a bound is reached,
// waits for those in flight, and returns every result in send order.
func (o openLoop) run(ctx context.Context, stop <-chan struct{}) []loadResult {
	client := o.Client
	if client == nil {
		client = newLoadClient(o.MaxInFlight, o.Timeout)
		defer client.CloseIdleConnections()
	}

	limit := int(o.Rate * o.MaxDuration.Seconds())
	results := make([]loadResult, 0, limit)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.MaxInFlight)
	interval := time.Duration(float64(time.Second) / o.Rate)
	begin := time.Now()
	for i := 0; i < limit; i++ {
		due := begin.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-stop:
				timer.Stop()
				i = limit
				continue
			case <-ctx.Done():
				timer.Stop()
				i = limit
				continue
			}
		} else {
			select {
			case <-stop:
				i = limit
				continue
			case <-ctx.Done():
				i = limit
				continue
			default:
			}
		}
		mu.Lock()
		results = append(results, loadResult{start: due})
		idx := len(results) - 1
		mu.Unlock()
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			results[idx].err = errSaturated
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := o.one(ctx, client)
			lat := time.Since(due)
			mu.Lock()
			results[idx].latency, results[idx].err = lat, err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

func (o openLoop) one(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return err
	}
	if o.Host != "" {
		req.Host = o.Host
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return err
	}
	if o.Check != nil {
		return o.Check(res, body)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return errors.New(res.Status)
	}
	return nil
}

// percentile returns the p-th percentile (0..100) of the latencies of the
// results that succeeded, and how many failed.
func percentile(rs []loadResult, p float64) (time.Duration, int) {
	lat := make([]time.Duration, 0, len(rs))
	failed := 0
	for _, r := range rs {
		if r.err != nil {
			failed++
			continue
		}
		lat = append(lat, r.latency)
	}
	if len(lat) == 0 {
		return 0, failed
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	i := int(float64(len(lat))*p/100+0.5) - 1
	i = min(max(i, 0), len(lat)-1)
	return lat[i], failed
}
