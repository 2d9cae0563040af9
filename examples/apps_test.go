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

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/detect"
	"github.com/slipway-dev/slipway/channels/runtime"
)

// TestApps deploys each example app the way slipway does, step by step,
// against the local incusd: resolve the app (slipway.yml, Procfile, detected
// language), launch its image, unpack the tree into /app, run build and
// release steps, start web on $PORT, wait for the health check, then read
// the front page. Apps whose image is not on this host are skipped.
func TestApps(t *testing.T) {
	for _, tc := range []struct {
		app  string
		want string
		bare bool // deploy it without its slipway.yml
	}{
		{"static", "Hello from slipway", false},
		{"static", "Hello from slipway", true}, // the detected static server
		{"cgi", "Ahoy &lt;crew&gt; from slipway", false},
		{"python", "Hello from slipway: visit number 1", false},
		{"node", "Hello from slipway (Node", false},
		{"go", "Hello from slipway (go1.", false},
	} {
		name := "app-" + tc.app
		var files detect.Files = detect.Dir(filepath.Join("apps", tc.app))
		if tc.bare {
			name += "-bare"
			files = without{files, channels.ManifestFile}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("apps", tc.app)
			a, err := channels.LoadApp(files)
			if err != nil {
				t.Fatal(err)
			}
			c := container.NewTestIncus(t)
			if _, _, err := c.Server().GetImageAlias(a.Image); err != nil {
				t.Skipf("image %s is not on this host: %v", a.Image, err)
			}
			ctx := context.Background()
			start := time.Now()
			if err := c.Launch(ctx, name, a.Image, map[string]string{"app": tc.app}); err != nil {
				t.Fatal(err)
			}
			env := merge(a.Env, map[string]string{"PORT": "5000", "GREETING": "Ahoy <crew>"})
			buildEnv := merge(a.BuildEnv, env, map[string]string{"SLIPWAY_CACHE": "/var/cache/slipway-build"})
			if err := c.Deliver(ctx, name, appTar(t, dir)); err != nil {
				t.Fatalf("deliver: %v", err)
			}
			for _, step := range a.Build {
				if code, out := run(t, c, name, buildEnv, "cd /app && "+step.Command); code != 0 {
					t.Fatalf("%s: exit %d: %s", step.Name, code, out)
				}
			}
			for _, step := range a.Release {
				if code, out := run(t, c, name, env, "cd /app && "+step); code != 0 {
					t.Fatalf("release %s: exit %d: %s", step, code, out)
				}
			}
			procs := runtime.Processes{Env: env, Dir: "/app"}
			for _, p := range a.Processes {
				procs.List = append(procs.List, runtime.Process{Name: p.Name, Command: p.Command})
			}
			if err := c.StartProcesses(ctx, name, procs); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(a.Health.Timeout)
			for {
				status, _, err := get(c, name, 5000, a.Health.Path)
				if err == nil && status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("health check %s: status %d, %v", a.Health.Path, status, err)
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

// without hides one file of a tree.
type without struct {
	detect.Files
	hidden string
}

func (w without) Exists(path string) bool { return path != w.hidden && w.Files.Exists(path) }

func (w without) ReadFile(path string) ([]byte, error) {
	if path == w.hidden {
		return nil, fs.ErrNotExist
	}
	return w.Files.ReadFile(path)
}

// merge returns the union of maps, later ones winning.
func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
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

// run runs a shell command in the instance through its supervisor, as a
// deploy's build steps run.
func run(t *testing.T, c *container.Incus, name string, env map[string]string, command string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := c.Run(context.Background(), name, []string{"/bin/sh", "-c", command}, env, &out)
	if err != nil {
		t.Fatalf("run %q: %v", command, err)
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
