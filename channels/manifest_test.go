package channels

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/detect"
)

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(`
image: slipway/busybox
build:
  - chmod +x cgi-bin/hello
release: echo migrate
web: httpd -f -p $PORT -h /app/public
health:
  path: /healthz
  timeout: 5s
volumes:
  data: /var/lib/app
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Image != "slipway/busybox" || len(m.Build) != 1 || m.Release[0] != "echo migrate" ||
		m.Web != "httpd -f -p $PORT -h /app/public" || m.Health.Path != "/healthz" ||
		m.Health.Timeout != 5*time.Second || m.Volumes["data"] != "/var/lib/app" {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseManifestDefaults(t *testing.T) {
	m, err := ParseManifest([]byte("web: ./serve\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Image != DefaultImage || m.Health.Path != "/" || m.Health.Timeout != 30*time.Second {
		t.Fatalf("defaults %+v", m)
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", "slipway.yml: is empty"},
		{"syntax", "image: a\nweb: d\n  e: f\n", "slipway.yml line 3: does not parse"},
		{"not a mapping", "- a\n- b\n", "slipway.yml line 1: must be a mapping"},
		{"no web", "image: x\n", "slipway.yml line 1: web: is missing"},
		{"unknown field", "web: x\nbuidl: make\n", "slipway.yml line 2: buidl: unknown field"},
		{"bad timeout", "web: x\nhealth:\n  timeout: soon\n", `slipway.yml line 3: health.timeout: "soon" is not a duration`},
		{"bad path", "web: x\nhealth:\n  path: healthz\n", "slipway.yml line 3: health.path: must be a path"},
		{"path with a space", "web: x\nhealth:\n  path: \"/a b\"\n", "slipway.yml line 3: health.path: must be a path"},
		{"path with CRLF", "web: x\nhealth:\n  path: \"/a\\r\\nHost: evil\"\n", "slipway.yml line 3: health.path: must be a path"},
		{"path with a host", "web: x\nhealth:\n  path: //evil.example/\n", "slipway.yml line 3: health.path: must be a path"},
		{"long path", "web: x\nhealth:\n  path: /" + strings.Repeat("a", 1100) + "\n", "slipway.yml line 3: health.path: must be a path"},
		{"bad build item", "web: x\nbuild:\n  - {a: b}\n", "slipway.yml line 3: build: each item"},
		{"web list", "web:\n  - a\n", "slipway.yml line 2: web: must be a single string"},
		{"twice", "web: a\nweb: b\n", "slipway.yml line 2: web: appears twice"},
		{"bad volume", "web: a\nvolumes:\n  Data: /x\n", "slipway.yml line 3: volumes.Data"},
		{"web twice", "web: a\nprocesses:\n  web: b\n", "slipway.yml line 1: web: is given twice, here and as processes.web"},
		{"processes list", "web: a\nprocesses:\n  - b\n", "slipway.yml line 3: processes: must map process types"},
		{"bad process name", "processes:\n  web: a\n  my worker: b\n", `slipway.yml line 3: processes.my worker: process types hold only`},
		{"empty process", "processes:\n  web: a\n  worker: \"\"\n", "slipway.yml line 3: processes.worker: must be a single non-empty command"},
		{"release process", "processes:\n  web: a\n  release: b\n", "slipway.yml line 1: processes.release: release runs once"},
		{"processes without web", "processes:\n  worker: a\n", "slipway.yml line 1: web: is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.doc))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a ManifestError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
		})
	}
}

func TestParseManifestProcesses(t *testing.T) {
	m, err := ParseManifest([]byte("web: ./serve\nprocesses:\n  worker: ./work\n  clock: ./tick\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []detect.Process{{Name: "web", Command: "./serve"}, {Name: "worker", Command: "./work"}, {Name: "clock", Command: "./tick"}}
	if m.Web != "./serve" || !reflect.DeepEqual(m.Processes, want) {
		t.Fatalf("web %q, processes %q", m.Web, m.Processes)
	}
	m, err = ParseManifest([]byte("processes:\n  worker: ./work\n  web: ./serve\n"))
	if err != nil || m.Web != "./serve" || len(m.Processes) != 2 || m.Processes[0].Name != "worker" {
		t.Fatalf("processes.web: %+v %v", m, err)
	}
}

// resolve is ResolveApp over files, with slipway.yml and the Procfile taken
// from them as LoadApp does.
func resolve(t *testing.T, files detect.MapFiles) *App {
	t.Helper()
	a, err := LoadApp(files)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func names(procs []detect.Process) string {
	var out []string
	for _, p := range procs {
		out = append(out, p.Name+"="+p.Command)
	}
	return strings.Join(out, "; ")
}

func TestResolveAppDetected(t *testing.T) {
	a := resolve(t, detect.MapFiles{"requirements.txt": "", "app.py": ""})
	if a.Image != ToolchainImage || names(a.Processes) != "web=python3 app.py" || len(a.Build) != 1 ||
		a.Build[0].Command != "python3 -m venv --without-pip .venv" || a.Env["VIRTUAL_ENV"] != "/app/.venv" {
		t.Fatalf("resolved %+v", a)
	}
	if a.Log[0] != "-----> Python app detected (requirements.txt)" {
		t.Errorf("log %q", a.Log)
	}
	if a.Health != defaultHealth || len(a.Release) != 0 {
		t.Errorf("health %+v, release %q", a.Health, a.Release)
	}
}

func TestResolveAppProcfileOverDetection(t *testing.T) {
	a := resolve(t, detect.MapFiles{
		"package.json": `{"scripts": {"start": "node server.js"}}`,
		"Procfile":     "worker: node worker.js\nrelease: node migrate.js\n",
	})
	// The Procfile's types in its order, then the defaults of the types it
	// does not give; release is a step, not a process.
	if got := names(a.Processes); got != "worker=node worker.js; web=npm start" {
		t.Errorf("processes %q", got)
	}
	if !reflect.DeepEqual(a.Release, []string{"node migrate.js"}) {
		t.Errorf("release %q", a.Release)
	}
	a = resolve(t, detect.MapFiles{"requirements.txt": "", "app.py": "", "Procfile": "web: gunicorn app:app\n"})
	if got := names(a.Processes); got != "web=gunicorn app:app" {
		t.Errorf("Procfile web under a detected default: %q", got)
	}
}

func TestResolveAppManifestOverProcfile(t *testing.T) {
	a := resolve(t, detect.MapFiles{
		"slipway.yml": "release: ./migrate\nprocesses:\n  web: ./serve\n  jobs: ./jobs\n",
		"Procfile":    "web: ./old\nworker: ./work\nrelease: ./old-migrate\n",
	})
	if got := names(a.Processes); got != "web=./serve; jobs=./jobs" {
		t.Errorf("processes %q: the manifest's replace the Procfile's", got)
	}
	if !reflect.DeepEqual(a.Release, []string{"./migrate"}) {
		t.Errorf("release %q", a.Release)
	}
	if !strings.Contains(strings.Join(a.Log, "\n"), "Procfile ignored") {
		t.Errorf("log %q does not say the Procfile was ignored", a.Log)
	}
	// web: alone is processes.web; the Procfile then stands aside too.
	a = resolve(t, detect.MapFiles{"slipway.yml": "web: ./serve\n", "Procfile": "worker: ./work\n"})
	if got := names(a.Processes); got != "web=./serve" {
		t.Errorf("web: over a Procfile: %q", got)
	}
	// A manifest without processes leaves them to the Procfile.
	a = resolve(t, detect.MapFiles{"slipway.yml": "health:\n  path: /up\n", "Procfile": "web: ./serve\nrelease: ./m\n"})
	if names(a.Processes) != "web=./serve" || a.Health.Path != "/up" || a.Release[0] != "./m" || a.Image != DefaultImage {
		t.Errorf("manifest with a Procfile: %+v", a)
	}
}

func TestResolveAppManifestBuildWins(t *testing.T) {
	a := resolve(t, detect.MapFiles{"slipway.yml": "build: make\nweb: ./serve\n", "requirements.txt": "flask\n"})
	if len(a.Build) != 1 || a.Build[0].Command != "make" || a.Build[0].Name == "" || a.Env != nil || a.Image != DefaultImage {
		t.Errorf("manifest build: %+v", a)
	}
	if len(a.Log) != 0 {
		t.Errorf("log %q: nothing was detected", a.Log)
	}
	// build: [] says "nothing to build" and turns detection off.
	a = resolve(t, detect.MapFiles{"slipway.yml": "build: []\nweb: ./serve\n", "go.mod": "module a\n"})
	if len(a.Build) != 0 || a.Image != DefaultImage {
		t.Errorf("build: []: %+v", a)
	}
	// No build: detection's steps run, under the manifest's image and web.
	a = resolve(t, detect.MapFiles{"slipway.yml": "image: my/python\nweb: python3 -m app\n", "requirements.txt": ""})
	if a.Image != "my/python" || len(a.Build) != 1 || names(a.Processes) != "web=python3 -m app" {
		t.Errorf("manifest without build: %+v", a)
	}
}

func TestResolveAppStatic(t *testing.T) {
	a := resolve(t, detect.MapFiles{"public/index.html": "hi"})
	if a.Image != DefaultImage || len(a.Build) != 0 || !strings.Contains(a.Web(), "httpd -f") {
		t.Errorf("static: %+v", a)
	}
	m := a.Manifest()
	if m.Web != a.Web() || m.Image != DefaultImage || m.Health != defaultHealth {
		t.Errorf("as a manifest: %+v", m)
	}
}

func TestResolveAppErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files detect.MapFiles
		want  string
	}{
		{"nothing", detect.MapFiles{"README.md": ""}, "nothing to run: add `web: <command serving on $PORT>` to a Procfile or to slipway.yml, or files slipway builds by itself (requirements.txt"},
		{"detected without web", detect.MapFiles{"requirements.txt": ""}, "Python app detected (requirements.txt), but no web process: add `web:"},
		{"Procfile without web", detect.MapFiles{"Procfile": "worker: ./w\n"}, "no web process in Procfile: add"},
		{"both without web", detect.MapFiles{"Procfile": "worker: ./w\n", "slipway.yml": "build: make\n"}, "no web process in slipway.yml and Procfile: add"},
		{"bad Procfile", detect.MapFiles{"Procfile": "web: a\nweb: b\n"}, "Procfile line 2: process type web appears twice"},
		{"bad manifest", detect.MapFiles{"slipway.yml": "web: a\nbuidl: b\n", "Procfile": "web: a\n"}, "slipway.yml line 2: buidl: unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadApp(tc.files)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
		})
	}
	_, err := ResolveApp(nil, nil, detect.MapFiles{})
	var nw *NoWebError
	if !errors.As(err, &nw) {
		t.Errorf("error %v is not a NoWebError", err)
	}
}
