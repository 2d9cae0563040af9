package detect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
)

// python: a virtualenv in /app/.venv, with requirements installed into it.
// `python3 -m venv` runs ensurepip, which takes seconds; a venv without pip
// takes 50 ms, and the system's pip installs into it through --python (pip
// ≥ 22.3; Debian 12 has 23.0.1).
func python(f Files) (Plan, bool) {
	reason := "requirements.txt"
	if !f.Exists(reason) {
		if reason = "pyproject.toml"; !f.Exists(reason) {
			return Plan{}, false
		}
	}
	p := Plan{Language: "Python", Reason: reason, Toolchain: true,
		Build: []Step{{"Creating a virtualenv in .venv", "python3 -m venv --without-pip .venv"}},
		Env: map[string]string{"VIRTUAL_ENV": "/app/.venv", "PATH": "/app/.venv/bin:" + basePath,
			// Without it a process's print()s sit in a buffer, not in the log.
			"PYTHONUNBUFFERED": "1"},
		BuildEnv: map[string]string{"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
	}
	pip := `python3 -m pip --python .venv/bin/python install --cache-dir "` + cacheDir + `/pip"`
	if f.Exists("vendor/wheels") {
		pip += " --no-index --find-links vendor/wheels"
	}
	switch {
	case reason == "pyproject.toml":
		p.Build = append(p.Build, Step{"Installing the project (pyproject.toml)", pip + " ."})
	case listsRequirements(f):
		p.Build = append(p.Build, Step{"Installing requirements.txt", pip + " -r requirements.txt"})
	}
	if f.Exists("app.py") {
		p.Processes = []Process{{"web", "python3 app.py"}}
	}
	return p, true
}

// listsRequirements reports whether requirements.txt names anything: pip
// costs half a second even with nothing to install.
func listsRequirements(f Files) bool {
	data, err := f.ReadFile("requirements.txt")
	if err != nil {
		return true // let pip say what is wrong
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// packageJSON is the part of package.json detection reads.
type packageJSON struct {
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	Scripts              map[string]string `json:"scripts"`
}

// node: npm ci when there is a lockfile (reproducible, and fails when the
// lock and package.json disagree), npm install without one; nothing when
// there are no dependencies, since npm's own start costs a few hundred ms.
func node(f Files) (Plan, bool) {
	data, err := f.ReadFile("package.json")
	if err != nil {
		return Plan{}, false
	}
	var pkg packageJSON
	json.Unmarshal(data, &pkg) // a broken package.json is npm's to report
	p := Plan{Language: "Node.js", Reason: "package.json", Toolchain: true,
		Env: map[string]string{"PATH": "/app/node_modules/.bin:" + basePath},
		// The update check would reach for the registry on every build.
		BuildEnv: map[string]string{"npm_config_update_notifier": "false"},
	}
	flags := ` --cache "` + cacheDir + `/npm" --prefer-offline --no-audit --no-fund`
	if len(pkg.Dependencies)+len(pkg.DevDependencies)+len(pkg.OptionalDependencies) > 0 {
		if f.Exists("package-lock.json") || f.Exists("npm-shrinkwrap.json") {
			p.Build = append(p.Build, Step{"Installing dependencies with npm ci", "npm ci" + flags})
		} else {
			p.Build = append(p.Build, Step{"Installing dependencies with npm install (no package-lock.json)", "npm install" + flags})
		}
	}
	if pkg.Scripts["build"] != "" {
		p.Build = append(p.Build, Step{"Running npm run build", "npm run build"})
	}
	// npm start runs scripts.start, or node server.js without one.
	if pkg.Scripts["start"] != "" || f.Exists("server.js") {
		p.Processes = []Process{{"web", "npm start"}}
	}
	return p, true
}

// appBinary is where the Go build puts the app, outside the tree's own files.
const appBinary = "/app/.slipway/bin/app"

// golang: one binary from the module's root package. GOTOOLCHAIN=local stops
// a newer go from fetching the toolchain a go.mod asks for; GOPROXY=off for
// a module without requirements turns any attempt to reach the network into
// an immediate error rather than a timeout on a host without one.
func golang(f Files) (Plan, bool) {
	mod, err := f.ReadFile("go.mod")
	if err != nil {
		return Plan{}, false
	}
	p := Plan{Language: "Go", Reason: "go.mod", Toolchain: true,
		Env:       map[string]string{"PATH": "/app/.slipway/bin:" + basePath},
		BuildEnv:  map[string]string{"GOTOOLCHAIN": "local"},
		Processes: []Process{{"web", appBinary}},
	}
	if !requiresModules(mod) {
		p.BuildEnv["GOPROXY"] = "off"
	}
	// -modcacherw: the module cache is otherwise read-only, and a cache
	// that cannot be deleted is a chore. cgo only where a C compiler is.
	build := `mkdir -p .slipway/bin && GOPATH="` + cacheDir + `/go" GOMODCACHE="` + cacheDir + `/go/mod" GOCACHE="` + cacheDir + `/go/build" ` +
		`CGO_ENABLED="${CGO_ENABLED:-$(command -v gcc >/dev/null 2>&1 && echo 1 || echo 0)}" ` +
		`go build -modcacherw -buildvcs=false`
	if f.Exists("vendor/modules.txt") {
		build += " -mod=vendor"
	}
	// The output path is relative (the build runs in /app) so the command also
	// works in a copy of the tree elsewhere.
	p.Build = []Step{{"Building with go build", build + " -o .slipway/bin/app ."}}
	return p, true
}

// requiresModules reports whether go.mod has a require directive.
func requiresModules(mod []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(mod))
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 && fields[0] == "require" {
			return true
		}
	}
	return false
}

// ruby: gems installed into the tree (vendor/bundle), so the kept image of
// a build holds them; bundler's download cache lives in the build cache.
func ruby(f Files) (Plan, bool) {
	if !f.Exists("Gemfile") {
		return Plan{}, false
	}
	p := Plan{Language: "Ruby", Reason: "Gemfile", Toolchain: true,
		Env: map[string]string{"BUNDLE_PATH": "/app/vendor/bundle", "BUNDLE_WITHOUT": "development:test",
			"PATH": "/app/bin:" + basePath},
	}
	install := `BUNDLE_USER_CACHE="` + cacheDir + `/bundler" bundle install --jobs 4`
	if f.Exists("vendor/cache") {
		install += " --local" // the gems are in the repository
	}
	p.Build = []Step{{"Installing gems with bundle install", install}}
	if f.Exists("config.ru") {
		// 0.0.0.0: rackup's default (localhost) may be ::1 alone, and a
		// proxy on a bridge dials the instance's address.
		p.Processes = []Process{{"web", "bundle exec rackup -p $PORT -o 0.0.0.0"}}
	}
	return p, true
}

// static: a site of files. The server is chosen when web starts, from what
// the image has: busybox httpd (slipway/busybox), else Python's.
func static(f Files) (Plan, bool) {
	dir, reason := "/app/public", "public/"
	if !f.Exists("public") {
		if !f.Exists("index.html") {
			return Plan{}, false
		}
		dir, reason = "/app", "index.html"
	}
	web := `if command -v busybox >/dev/null 2>&1; then exec busybox httpd -f -p "$PORT" -h ` + dir +
		`; else exec python3 -m http.server "$PORT" --directory ` + dir + `; fi`
	return Plan{Language: "Static", Reason: reason, Processes: []Process{{"web", web}}}, true
}
