package applog

import (
	"fmt"
	"sync"
	"time"
)

// Filter selects the records a reader asked for.
type Filter struct {
	Since   time.Time // none before (zero: no bound)
	Process string    // only this process type ("": all); events about it included
	Last    int       // at most this many, the newest (0: all)
}

func (f Filter) match(r Record) bool {
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	return f.Process == "" || r.Process == f.Process
}

// Read returns the records of installation id that f selects, oldest first.
func (s *Store) Read(id int64, f Filter) ([]Record, error) {
	l, err := s.get(id)
	if err != nil {
		return nil, err
	}
	// Hold the log while reading, so a rotation cannot move lines between
	// the two files under the reader.
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	for _, p := range []string{l.previous, l.current} {
		err := scan(p, func(r Record) bool {
			if f.match(r) {
				out = append(out, r)
				if f.Last > 0 && len(out) > 2*f.Last {
					out = append(out[:0], out[len(out)-f.Last:]...)
				}
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	if f.Last > 0 && len(out) > f.Last {
		out = out[len(out)-f.Last:]
	}
	return out, nil
}

// followBuffer is how many records a follower may be behind before the
// newest ones are dropped for it (and it is told how many).
const followBuffer = 1024

// Follow returns the records of installation id appended from now on, until
// stop is called or the store closes the channel. Records a slow follower
// could not take are dropped and replaced by one event saying how many.
func (s *Store) Follow(id int64, f Filter) (<-chan Record, func(), error) {
	l, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	fl := &follower{filter: f, ch: make(chan Record, followBuffer)}
	l.mu.Lock()
	l.subs[fl] = struct{}{}
	l.mu.Unlock()
	stop := func() {
		l.mu.Lock()
		if _, ok := l.subs[fl]; ok {
			delete(l.subs, fl)
			fl.end()
		}
		l.mu.Unlock()
	}
	return fl.ch, stop, nil
}

// follower is one live reader; its methods run under its log's lock.
type follower struct {
	filter  Filter
	ch      chan Record
	dropped int
	once    sync.Once
}

func (f *follower) send(r Record) {
	if !f.filter.match(r) {
		return
	}
	if f.dropped > 0 {
		notice := Record{Time: r.Time, Process: r.Process, Stream: "event",
			Line: fmt.Sprintf("%d lines were dropped here: this reader fell behind", f.dropped)}
		select {
		case f.ch <- notice:
			f.dropped = 0
		default:
			f.dropped++
			return
		}
	}
	select {
	case f.ch <- r:
	default:
		f.dropped++
	}
}

func (f *follower) end() { f.once.Do(func() { close(f.ch) }) }
