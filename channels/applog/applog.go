// Package applog keeps what apps print, per installation, on the host: two
// bounded files that outlive instances, deploys and daemon restarts, and the
// live followers of them (`logs APP/ENV --app -f`, the web page).
//
// The supervisor in each instance holds only a small ring of recent lines in
// memory; the daemon's collector copies them here as they come. Each record
// carries the supervisor's boot id and sequence number, so after a restart the
// collector asks each instance only for what it has not stored yet.
package applog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultLimit bounds the app logs kept for one installation, in bytes.
const DefaultLimit = 16 << 20

// Record is one line an app's process printed, or one of the supervisor's
// events about it (stream "event").
type Record struct {
	Time     time.Time `json:"t"`
	Instance string    `json:"i"`
	Process  string    `json:"p"`
	Stream   string    `json:"s"` // stdout, stderr or event
	Line     string    `json:"l"`
	Boot     string    `json:"b,omitempty"` // the supervisor's boot id
	Seq      uint64    `json:"q,omitempty"` // its sequence number within that boot
}

// Cursor is how far the logs of one instance have been stored.
type Cursor struct {
	Boot string
	Seq  uint64
}

// Store holds the app logs of every installation under one directory: for
// installation N, N.log (being written) and N.1.log (the one before). Each is
// kept under half the limit, so an installation never holds more than limit
// bytes of logs, and at least half of it once it has printed that much.
type Store struct {
	dir   string
	limit int64

	mu   sync.Mutex
	logs map[int64]*appLog
}

// Open opens (making it if needed) the store in dir; limit is the bytes kept
// per installation (0: DefaultLimit).
func Open(dir string, limit int64) (*Store, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("app logs: %w", err)
	}
	return &Store{dir: dir, limit: limit, logs: map[int64]*appLog{}}, nil
}

// Close closes every open log file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, l := range s.logs {
		errs = append(errs, l.close())
	}
	s.logs = map[int64]*appLog{}
	return errors.Join(errs...)
}

func (s *Store) paths(id int64) (current, previous string) {
	base := filepath.Join(s.dir, strconv.FormatInt(id, 10))
	return base + ".log", base + ".1.log"
}

// get returns the open log of installation id, opening it on first use.
func (s *Store) get(id int64) (*appLog, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[id]; l != nil {
		return l, nil
	}
	cur, prev := s.paths(id)
	l := &appLog{current: cur, previous: prev, half: s.limit / 2, cursors: map[string]Cursor{}, subs: map[*follower]struct{}{}}
	if err := l.open(); err != nil {
		return nil, err
	}
	s.logs[id] = l
	return l, nil
}

// Append stores records of installation id and hands them to its followers.
func (s *Store) Append(id int64, recs ...Record) error {
	l, err := s.get(id)
	if err != nil {
		return err
	}
	return l.append(recs)
}

// Cursor is how far the logs of instance have been stored for installation id.
func (s *Store) Cursor(id int64, instance string) (Cursor, error) {
	l, err := s.get(id)
	if err != nil {
		return Cursor{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cursors[instance], nil
}

// Remove deletes the logs of installation id (the installation is gone).
func (s *Store) Remove(id int64) error {
	s.mu.Lock()
	l := s.logs[id]
	delete(s.logs, id)
	s.mu.Unlock()
	var errs []error
	if l != nil {
		errs = append(errs, l.close())
	}
	cur, prev := s.paths(id)
	for _, p := range []string{cur, prev} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// appLog is the log of one installation.
type appLog struct {
	current, previous string
	half              int64

	mu      sync.Mutex
	f       *os.File
	size    int64
	cursors map[string]Cursor // instance -> last stored
	subs    map[*follower]struct{}
}

// open opens the current file for appending and learns each instance's
// cursor from what both files hold.
func (l *appLog) open() error {
	for _, p := range []string{l.previous, l.current} {
		if err := scan(p, func(r Record) bool { l.seen(r); return true }); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(l.current, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("app logs: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("app logs: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

func (l *appLog) seen(r Record) {
	if r.Boot != "" {
		l.cursors[r.Instance] = Cursor{Boot: r.Boot, Seq: r.Seq}
	}
}

func (l *appLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for f := range l.subs {
		f.end()
	}
	l.subs = map[*follower]struct{}{}
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func (l *appLog) append(recs []Record) error {
	var buf bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("app logs: closed")
	}
	if l.size > 0 && l.size+int64(buf.Len()) > l.half {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(buf.Bytes())
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("app logs: %w", err)
	}
	for _, r := range recs {
		l.seen(r)
		for f := range l.subs {
			f.send(r)
		}
	}
	return nil
}

// rotate makes the current file the previous one (dropping the one before)
// and starts an empty current file.
func (l *appLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("app logs: %w", err)
	}
	l.f = nil
	if err := os.Rename(l.current, l.previous); err != nil {
		return fmt.Errorf("app logs: %w", err)
	}
	f, err := os.OpenFile(l.current, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("app logs: %w", err)
	}
	l.f, l.size = f, 0
	return nil
}

// scan calls fn with each record of the file at path, in order, until fn
// returns false. A missing file holds none; a line that does not parse (a
// write cut short by a crash) is skipped.
func scan(path string, fn func(Record) bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("app logs: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if !fn(r) {
			return nil
		}
	}
	return sc.Err()
}
