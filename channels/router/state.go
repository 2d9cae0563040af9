package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// stateVersion is written into the state file, so that a later layout is
// recognised rather than misread.
const stateVersion = 1

type stateFile struct {
	Version int     `json:"version"`
	Routes  []Route `json:"routes"`
}

// loadState reads the routes saved at path; a missing file holds none.
func loadState(path string) ([]Route, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the routes: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read the routes in %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("read the routes in %s: version %d, this slipway reads %d", path, st.Version, stateVersion)
	}
	return st.Routes, nil
}

// save writes the routes to the state file atomically (a new file renamed
// over the old, synced first): a proxy killed at any moment finds either the
// routes before the change or those after it. The caller holds t.mu.
func (t *Table) save() error {
	if t.state == "" {
		return nil
	}
	st := stateFile{Version: stateVersion, Routes: make([]Route, 0, len(t.routes))}
	for _, r := range t.routes {
		st.Routes = append(st.Routes, r)
	}
	sort.Slice(st.Routes, func(i, j int) bool { return st.Routes[i].Host < st.Routes[j].Host })
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(t.state), ".routes-*")
	if err != nil {
		return fmt.Errorf("save the routes: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing there
	if _, err := tmp.Write(append(data, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), t.state)
	}
	if err != nil {
		return fmt.Errorf("save the routes: %w", err)
	}
	return nil
}
