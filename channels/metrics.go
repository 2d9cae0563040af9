package channels

import (
	"sort"
	"sync"
	"time"
)

// durationBuckets are the upper bounds, in seconds, of the operation duration
// histogram: deploys take about a second, builds can take minutes.
var durationBuckets = []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900}

// Histogram is a cumulative histogram of operation durations for one type.
type Histogram struct {
	Buckets []float64 // upper bounds
	Counts  []uint64  // cumulative count per bucket
	Count   uint64
	Sum     float64
}

type durations struct {
	mu     sync.Mutex
	byType map[string]*Histogram
}

func (d *durations) observe(opType string, took time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byType == nil {
		d.byType = map[string]*Histogram{}
	}
	h := d.byType[opType]
	if h == nil {
		h = &Histogram{Buckets: durationBuckets, Counts: make([]uint64, len(durationBuckets))}
		d.byType[opType] = h
	}
	s := took.Seconds()
	for i, b := range h.Buckets {
		if s <= b {
			h.Counts[i]++
		}
	}
	h.Count++
	h.Sum += s
}

// Durations returns a copy of the duration histograms by operation type,
// since the daemon started.
func (e *Engine) Durations() (types []string, hists []Histogram) {
	e.durations.mu.Lock()
	defer e.durations.mu.Unlock()
	for t := range e.durations.byType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		h := *e.durations.byType[t]
		h.Counts = append([]uint64(nil), h.Counts...)
		hists = append(hists, h)
	}
	return types, hists
}
