package examples_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slipway-dev/slipway/channels/container"
)

// manifest is the part of slipway.yml these tests use; the engine owns the
// real parser.
type manifest struct {
	Image   string   `yaml:"image"`
	Build   []string `yaml:"build"`
	Release []string `yaml:"release"`
	Web     string   `yaml:"web"`
	Health  struct {
		Path    string `yaml:"path"`
		Timeout string `yaml:"timeout"`
	} `yaml:"health"`
}

// TestApps deploys each example app the way slipway does, step by step,
// against the local incusd: launch the manifest's image, unpack the tree into
// /app, run build and release steps, start web on $PORT, wait for the health
// check, then read the front page.
func TestApps(t *testing.T) {
	for _, tc := range []struct {
		app  string
		want string
	}{
		{"static", "Hello from slipway"},
		{"cgi", "Ahoy &lt;crew&gt; from slipway"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("apps", tc.app)
			raw, err := os.ReadFile(filepath.Join(dir, "slipway.yml"))
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			if err := yaml.Unmarshal(raw, &m); err != nil {
				t.Fatalf("slipway.yml: %v", err)
			}
			if m.Image == "" || m.Web == "" || m.Health.Path == "" {
				t.Fatalf("slipway.yml lacks image, web or health.path: %+v", m)
			}
			timeout, err := time.ParseDuration(m.Health.Timeout)
			if err != nil {
				t.Fatalf("health.timeout: %v", err)
			}

			c := container.NewTestIncus(t)
			ctx := context.Background()
			name := "app-" + tc.app
			start := time.Now()
			if err := c.Launch(ctx, name, m.Image, map[string]string{"app": tc.app}); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"PORT": "5000", "GREETING": "Ahoy <crew>"}
			if code, out := run(t, c, name, nil, appTar(t, dir), "tar", "-x", "-C", "/app"); code != 0 {
				t.Fatalf("unpack: exit %d: %s", code, out)
			}
			for _, step := range append(m.Build, m.Release...) {
				if code, out := run(t, c, name, env, nil, "sh", "-c", "cd /app && "+step); code != 0 {
					t.Fatalf("%s: exit %d: %s", step, code, out)
				}
			}
			if err := c.StartService(ctx, name, m.Web, env, nil); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(timeout)
			for {
				status, _, err := get(c, name, 5000, m.Health.Path)
				if err == nil && status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("health check %s: status %d, %v", m.Health.Path, status, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("launch to healthy: %v", time.Since(start))
			status, body, err := get(c, name, 5000, "/")
			if err != nil || status != 200 || !strings.Contains(body, tc.want) {
				t.Errorf("GET /: %d %v\n%s", status, err, body)
			}
		})
	}
}

// appTar packs an example app's files as the tree of a commit would be.
func appTar(t *testing.T, dir string) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			_, err = tw.Write(body)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return &buf
}

func run(t *testing.T, c *container.Incus, name string, env map[string]string, stdin io.Reader, cmd ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := c.Exec(context.Background(), name, cmd, env, stdin, &out)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return code, out.String()
}

func get(c *container.Incus, name string, port int, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, name, port)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: app\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
