// Package remote is slipway's laptop side: named slipway servers, and a
// command sent to one over SSH as a JSON array of its arguments, so they
// reach the server whole, without the remote shell's word splitting.
package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/slipway-dev/slipway/channels/backup/atomicfile"
)

// Remote is one slipway server, as `ssh` reaches it.
type Remote struct {
	Name string `json:"name"`
	URL  string `json:"url"` // ssh://[USER@]HOST[:PORT]
}

// Config is the laptop's list of remotes and which one commands go to by
// default.
type Config struct {
	Default string   `json:"default"`
	Remotes []Remote `json:"remotes"`
}

// Path is where the config lives: $SLIPWAY_REMOTES, or slipway/remotes.json
// in the user's config directory ($XDG_CONFIG_HOME or ~/.config).
func Path() (string, error) {
	if p := os.Getenv("SLIPWAY_REMOTES"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory to keep remotes in: %w", err)
	}
	return filepath.Join(dir, "slipway", "remotes.json"), nil
}

// Load reads the config at path; none there is an empty one.
func Load(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s is not slipway's remotes file: %v", path, err)
	}
	return c, nil
}

// Save writes the config whole, readable by its owner alone.
func (c Config) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

var nameRule = regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)

// Add adds a remote; the first one becomes the default.
func (c *Config) Add(name, rawURL string) error {
	if !nameRule.MatchString(name) {
		return fmt.Errorf("remote name %q: use lowercase letters, digits and dashes, starting with a letter", name)
	}
	if _, err := c.Get(name); err == nil {
		return fmt.Errorf("remote %s already exists; remove it first", name)
	}
	if _, err := Parse(rawURL); err != nil {
		return err
	}
	c.Remotes = append(c.Remotes, Remote{Name: name, URL: rawURL})
	sort.Slice(c.Remotes, func(i, j int) bool { return c.Remotes[i].Name < c.Remotes[j].Name })
	if c.Default == "" {
		c.Default = name
	}
	return nil
}

// Remove removes a remote; the default moves to another when it was it.
func (c *Config) Remove(name string) error {
	for i, r := range c.Remotes {
		if r.Name == name {
			c.Remotes = append(c.Remotes[:i], c.Remotes[i+1:]...)
			if c.Default == name {
				c.Default = ""
				if len(c.Remotes) > 0 {
					c.Default = c.Remotes[0].Name
				}
			}
			return nil
		}
	}
	return fmt.Errorf("no remote %s (slipway remote list shows them)", name)
}

// Get returns the remote called name, or the default one for "".
func (c *Config) Get(name string) (Remote, error) {
	if name == "" {
		name = c.Default
	}
	if name == "" {
		return Remote{}, errors.New("no remote yet: slipway remote add NAME ssh://git@HOST:2222")
	}
	for _, r := range c.Remotes {
		if r.Name == name {
			return r, nil
		}
	}
	return Remote{}, fmt.Errorf("no remote %s (slipway remote list shows them)", name)
}

// Target is where ssh connects: ssh [-p PORT] USER@HOST.
type Target struct{ User, Host, Port string }

// Parse reads ssh://[USER@]HOST[:PORT]; the user defaults to git.
func Parse(rawURL string) (Target, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ssh" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return Target{}, fmt.Errorf("%q is not an SSH address such as ssh://git@example.com:2222", rawURL)
	}
	t := Target{User: "git", Host: u.Hostname(), Port: u.Port()}
	if u.User != nil && u.User.Username() != "" {
		t.User = u.User.Username()
	}
	if strings.HasPrefix(t.Host, "-") || strings.HasPrefix(t.User, "-") {
		return Target{}, fmt.Errorf("%q: a host or user may not start with -", rawURL)
	}
	return t, nil
}

// SSHArgs are the arguments of ssh that run args on the remote: options
// from SLIPWAY_SSH_OPTIONS (split on blanks), the port, the destination
// and the command as one JSON array.
func SSHArgs(r Remote, args []string, tty bool) ([]string, error) {
	t, err := Parse(r.URL)
	if err != nil {
		return nil, err
	}
	command, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	out := strings.Fields(os.Getenv("SLIPWAY_SSH_OPTIONS"))
	if tty {
		out = append(out, "-t")
	}
	if t.Port != "" {
		out = append(out, "-p", t.Port)
	}
	return append(out, t.User+"@"+t.Host, string(command)), nil
}
