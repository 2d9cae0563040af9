package detect

import (
	"strings"
	"testing"
)

// commands joins a plan's build commands for substring checks.
func commands(p Plan) string {
	var b strings.Builder
	for _, s := range p.Build {
		if s.Name == "" || s.Command == "" {
			b.WriteString("<unnamed or empty step>")
		}
		b.WriteString(s.Command + "\n")
	}
	return b.String()
}

func detect(t *testing.T, files MapFiles) Plan {
	t.Helper()
	p, ok := Detect(files)
	if !ok {
		t.Fatalf("nothing detected in %v", files)
	}
	return p
}

func TestDetectPython(t *testing.T) {
	p := detect(t, MapFiles{"requirements.txt": "flask==3.0\n", "app.py": ""})
	if p.Detected() != "Python app detected (requirements.txt)" || !p.Toolchain {
		t.Fatalf("detected %q, toolchain %v", p.Detected(), p.Toolchain)
	}
	cmds := commands(p)
	for _, want := range []string{
		"python3 -m venv --without-pip .venv\n",
		`python3 -m pip --python .venv/bin/python install --cache-dir "${SLIPWAY_CACHE:-/var/tmp/slipway-cache}/pip" -r requirements.txt`,
	} {
		if !strings.Contains(cmds, want) {
			t.Errorf("build lacks %q:\n%s", want, cmds)
		}
	}
	if strings.Contains(cmds, "--no-index") {
		t.Errorf("no vendor/wheels, yet the install is offline:\n%s", cmds)
	}
	if p.Web() != "python3 app.py" {
		t.Errorf("web %q", p.Web())
	}
	if !strings.HasPrefix(p.Env["PATH"], "/app/.venv/bin:") || p.Env["VIRTUAL_ENV"] != "/app/.venv" {
		t.Errorf("env %v", p.Env)
	}
}

func TestDetectPythonEmptyRequirements(t *testing.T) {
	p := detect(t, MapFiles{"requirements.txt": "# stdlib only\n\n", "main.py": ""})
	if len(p.Build) != 1 || strings.Contains(commands(p), "-m pip") {
		t.Fatalf("an empty requirements.txt still runs pip:\n%s", commands(p))
	}
	if p.Web() != "" {
		t.Errorf("web %q without app.py", p.Web())
	}
}

func TestDetectPythonVendoredWheels(t *testing.T) {
	p := detect(t, MapFiles{"requirements.txt": "six\n", "vendor/wheels/six-1.16.0-py2.py3-none-any.whl": "x"})
	if !strings.Contains(commands(p), "--no-index --find-links vendor/wheels -r requirements.txt") {
		t.Fatalf("vendored wheels not used:\n%s", commands(p))
	}
}

func TestDetectPyproject(t *testing.T) {
	p := detect(t, MapFiles{"pyproject.toml": "[project]\nname='a'\n"})
	if p.Reason != "pyproject.toml" || !strings.HasSuffix(strings.TrimSpace(commands(p)), " .") {
		t.Fatalf("%s:\n%s", p.Detected(), commands(p))
	}
}

func TestDetectNode(t *testing.T) {
	deps := `{"dependencies": {"express": "^4"}, "scripts": {"start": "node index.js", "build": "tsc"}}`
	p := detect(t, MapFiles{"package.json": deps, "package-lock.json": "{}"})
	if p.Detected() != "Node.js app detected (package.json)" || p.Web() != "npm start" {
		t.Fatalf("%s, web %q", p.Detected(), p.Web())
	}
	cmds := commands(p)
	if !strings.Contains(cmds, `npm ci --cache "${SLIPWAY_CACHE:-/var/tmp/slipway-cache}/npm" --prefer-offline --no-audit --no-fund`) ||
		!strings.Contains(cmds, "npm run build") {
		t.Fatalf("build:\n%s", cmds)
	}
	if p := detect(t, MapFiles{"package.json": deps}); !strings.HasPrefix(commands(p), "npm install ") {
		t.Errorf("without a lockfile:\n%s", commands(p))
	}
}

func TestDetectNodeWithoutDependencies(t *testing.T) {
	p := detect(t, MapFiles{"package.json": `{"name": "a"}`, "package-lock.json": "{}"})
	if len(p.Build) != 0 {
		t.Errorf("nothing to install, yet:\n%s", commands(p))
	}
	if p.Web() != "" {
		t.Errorf("web %q with neither scripts.start nor server.js", p.Web())
	}
	if p := detect(t, MapFiles{"package.json": `{}`, "server.js": ""}); p.Web() != "npm start" {
		t.Errorf("server.js: web %q", p.Web())
	}
}

func TestDetectGo(t *testing.T) {
	p := detect(t, MapFiles{"go.mod": "module example.com/a\n\ngo 1.19\n", "main.go": ""})
	cmds := commands(p)
	for _, want := range []string{"go build ", "-o .slipway/bin/app .", `GOCACHE="${SLIPWAY_CACHE:-/var/tmp/slipway-cache}/go/build"`, `GOMODCACHE="${SLIPWAY_CACHE`} {
		if !strings.Contains(cmds, want) {
			t.Errorf("build lacks %q:\n%s", want, cmds)
		}
	}
	if strings.Contains(cmds, "-mod=vendor") {
		t.Errorf("-mod=vendor without vendor/")
	}
	if p.BuildEnv["GOPROXY"] != "off" || p.BuildEnv["GOTOOLCHAIN"] != "local" || p.Env["GOPROXY"] != "" {
		t.Errorf("build env %v, env %v", p.BuildEnv, p.Env)
	}
	if p.Web() != "/app/.slipway/bin/app" {
		t.Errorf("web %q", p.Web())
	}
	withDeps := MapFiles{"go.mod": "module a\n\ngo 1.19\n\nrequire golang.org/x/text v0.3.0\n", "vendor/modules.txt": ""}
	p = detect(t, withDeps)
	if _, off := p.BuildEnv["GOPROXY"]; off || !strings.Contains(commands(p), "-mod=vendor") {
		t.Errorf("with requirements and vendor/: %v\n%s", p.BuildEnv, commands(p))
	}
}

func TestDetectRuby(t *testing.T) {
	p := detect(t, MapFiles{"Gemfile": "source 'https://rubygems.org'\n", "config.ru": "run App\n"})
	if p.Language != "Ruby" || p.Env["BUNDLE_PATH"] != "/app/vendor/bundle" ||
		!strings.Contains(commands(p), `BUNDLE_USER_CACHE="${SLIPWAY_CACHE:-/var/tmp/slipway-cache}/bundler" bundle install`) {
		t.Fatalf("%s %v\n%s", p.Detected(), p.Env, commands(p))
	}
	if !strings.HasPrefix(p.Web(), "bundle exec rackup -p $PORT") {
		t.Errorf("web %q", p.Web())
	}
	if p := detect(t, MapFiles{"Gemfile": ""}); p.Web() != "" {
		t.Errorf("web %q without config.ru", p.Web())
	}
}

func TestDetectStatic(t *testing.T) {
	p := detect(t, MapFiles{"public/index.html": "hi", "README.md": ""})
	if p.Detected() != "Static app detected (public/)" || p.Toolchain || len(p.Build) != 0 ||
		!strings.Contains(p.Web(), "httpd -f -p \"$PORT\" -h /app/public;") ||
		!strings.Contains(p.Web(), "http.server \"$PORT\" --directory /app/public;") {
		t.Fatalf("%s toolchain %v web %q", p.Detected(), p.Toolchain, p.Web())
	}
	if p := detect(t, MapFiles{"index.html": "hi"}); !strings.Contains(p.Web(), "-h /app;") {
		t.Errorf("root site: web %q", p.Web())
	}
}

// TestDetectPrecedence: one language per app, the app's own before the
// tooling that often sits beside it.
func TestDetectPrecedence(t *testing.T) {
	for _, tc := range []struct {
		files MapFiles
		want  string
	}{
		{MapFiles{"requirements.txt": "", "package.json": "{}", "public/a": ""}, "Python app detected (requirements.txt)"},
		{MapFiles{"requirements.txt": "", "pyproject.toml": ""}, "Python app detected (requirements.txt)"},
		{MapFiles{"Gemfile": "", "package.json": "{}"}, "Ruby app detected (Gemfile)"},
		{MapFiles{"go.mod": "module a\n", "package.json": "{}", "index.html": ""}, "Go app detected (go.mod)"},
		{MapFiles{"package.json": "{}", "public/index.html": ""}, "Node.js app detected (package.json)"},
		{MapFiles{"index.html": "", "public/x": ""}, "Static app detected (public/)"},
	} {
		if got := detect(t, tc.files).Detected(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.files, got, tc.want)
		}
	}
	if p, ok := Detect(MapFiles{"README.md": "", "src/main.rs": "", "Procfile": "web: x"}); ok {
		t.Errorf("detected %s in a repository of no known language", p.Detected())
	}
}
