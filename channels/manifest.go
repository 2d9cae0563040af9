package channels

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slipway-dev/slipway/channels/detect"
)

// ManifestFile is the manifest's path at the root of an app's repository.
const ManifestFile = "slipway.yml"

// DefaultImage is the base image used when a manifest names none.
const DefaultImage = "slipway/busybox"

// Manifest is an app's slipway.yml: how to build, release and run it.
type Manifest struct {
	Image     string            // Incus image alias
	Build     []string          // run in /app of the new instance, in order
	Release   []string          // run once before traffic moves (migrations)
	Web       string            // long-running; must listen on $PORT
	Processes []detect.Process  // supervised, in order; web (if any) among them
	Health    Health            // how to tell the new instance is ready
	Volumes   map[string]string // persistent volume name -> mount path

	hasBuild bool // build: was given, even empty: language detection stays off
}

// Health is the readiness check run against a new instance before it gets traffic.
type Health struct {
	Path    string
	Timeout time.Duration
}

// ManifestError points at the line and field of slipway.yml at fault.
type ManifestError struct {
	Line   int
	Field  string
	Reason string
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	b.WriteString(ManifestFile)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

var (
	volumeName   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	yamlLineInfo = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)
)

// ParseManifest reads and checks a slipway.yml that must name the image's
// web command itself (web: or processes.web), with no Procfile or language
// detection to fill in: what the engine read before ResolveApp.
func ParseManifest(data []byte) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if len(doc.Content) == 0 {
		return nil, &ManifestError{Reason: "is empty; it needs at least a web command"}
	}
	m, err := decodeManifest(doc.Content[0])
	if err != nil {
		return nil, err
	}
	if m.Image == "" {
		m.Image = DefaultImage
	}
	if strings.TrimSpace(m.Web) == "" {
		return nil, &ManifestError{Line: doc.Content[0].Line, Field: "web", Reason: "is missing: give the command that serves the app on $PORT"}
	}
	return m, nil
}

// parseManifestPart reads a slipway.yml that may leave out what a Procfile
// or language detection gives: an empty one says nothing, and Image stays
// "" when not given.
func parseManifestPart(data []byte) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if len(doc.Content) == 0 {
		return &Manifest{Health: defaultHealth}, nil
	}
	return decodeManifest(doc.Content[0])
}

var defaultHealth = Health{Path: "/", Timeout: 30 * time.Second}

// decodeManifest checks each field of the manifest's root mapping.
func decodeManifest(root *yaml.Node) (*Manifest, error) {
	if root.Kind != yaml.MappingNode {
		return nil, &ManifestError{Line: root.Line, Reason: "must be a mapping of fields (" + manifestFields + ")"}
	}
	m := &Manifest{Health: defaultHealth}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if seen[key.Value] != nil {
			return nil, &ManifestError{Line: key.Line, Field: key.Value, Reason: "appears twice"}
		}
		seen[key.Value] = key
		var err error
		switch key.Value {
		case "image":
			m.Image, err = scalar(key, val)
			if err == nil && m.Image == "" {
				err = &ManifestError{Line: val.Line, Field: "image", Reason: "must name an Incus image alias"}
			}
		case "build":
			m.Build, err = commands(key, val)
			m.hasBuild = true
		case "release":
			m.Release, err = commands(key, val)
		case "web":
			m.Web, err = scalar(key, val)
		case "processes":
			m.Processes, err = parseProcesses(val)
		case "health":
			err = parseHealth(val, &m.Health)
		case "volumes":
			m.Volumes, err = parseVolumes(val)
		default:
			err = &ManifestError{Line: key.Line, Field: key.Value, Reason: "unknown field (known: " + manifestFields + ")"}
		}
		if err != nil {
			return nil, err
		}
	}
	return m, mergeWeb(m, seen)
}

const manifestFields = "image, build, release, web, processes, health, volumes"

// mergeWeb makes web: the shorthand it is for processes.web, first in
// order, and keeps Web filled for the engine's readers of it. release is a
// step, run once; as a process type it belongs in release:.
func mergeWeb(m *Manifest, seen map[string]*yaml.Node) error {
	for _, p := range m.Processes {
		switch {
		case p.Name == "web" && seen["web"] != nil:
			return &ManifestError{Line: seen["web"].Line, Field: "web", Reason: "is given twice, here and as processes.web: keep one"}
		case p.Name == "web":
			m.Web = p.Command
		case p.Name == "release":
			return &ManifestError{Line: seen["processes"].Line, Field: "processes.release", Reason: "release runs once before traffic moves, not as a process: use the release: field"}
		}
	}
	if seen["web"] != nil && strings.TrimSpace(m.Web) != "" {
		m.Processes = append([]detect.Process{{Name: "web", Command: m.Web}}, m.Processes...)
	}
	return nil
}

// parseProcesses reads processes: a mapping of process type to command,
// in the order written.
func parseProcesses(val *yaml.Node) ([]detect.Process, error) {
	if val.Kind != yaml.MappingNode {
		return nil, &ManifestError{Line: val.Line, Field: "processes", Reason: "must map process types to commands (web: ..., worker: ...)"}
	}
	var out []detect.Process
	for i := 0; i+1 < len(val.Content); i += 2 {
		key, v := val.Content[i], val.Content[i+1]
		field := "processes." + key.Value
		if !detect.ValidProcessName(key.Value) {
			return nil, &ManifestError{Line: key.Line, Field: field, Reason: "process types hold only letters, digits, _ and -"}
		}
		for _, p := range out {
			if p.Name == key.Value {
				return nil, &ManifestError{Line: key.Line, Field: field, Reason: "appears twice"}
			}
		}
		if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
			return nil, &ManifestError{Line: v.Line, Field: field, Reason: "must be a single non-empty command"}
		}
		out = append(out, detect.Process{Name: key.Value, Command: v.Value})
	}
	return out, nil
}

func scalar(key, val *yaml.Node) (string, error) {
	if val.Kind != yaml.ScalarNode {
		return "", &ManifestError{Line: val.Line, Field: key.Value, Reason: "must be a single string"}
	}
	return val.Value, nil
}

// commands accepts one command or a list of them.
func commands(key, val *yaml.Node) ([]string, error) {
	switch val.Kind {
	case yaml.ScalarNode:
		if val.Tag == "!!null" || strings.TrimSpace(val.Value) == "" {
			return nil, nil
		}
		return []string{val.Value}, nil
	case yaml.SequenceNode:
		var out []string
		for _, item := range val.Content {
			if item.Kind != yaml.ScalarNode || strings.TrimSpace(item.Value) == "" {
				return nil, &ManifestError{Line: item.Line, Field: key.Value, Reason: "each item must be a non-empty command string"}
			}
			out = append(out, item.Value)
		}
		return out, nil
	}
	return nil, &ManifestError{Line: val.Line, Field: key.Value, Reason: "must be a command or a list of commands"}
}

func parseHealth(val *yaml.Node, h *Health) error {
	if val.Kind != yaml.MappingNode {
		return &ManifestError{Line: val.Line, Field: "health", Reason: "must be a mapping with path and timeout"}
	}
	for i := 0; i+1 < len(val.Content); i += 2 {
		key, v := val.Content[i], val.Content[i+1]
		switch key.Value {
		case "path":
			if v.Kind != yaml.ScalarNode || !validHealthPath(v.Value) {
				return &ManifestError{Line: v.Line, Field: "health.path",
					Reason: "must be a path starting with / (and an optional ?query), at most 1024 characters, without spaces, control characters or #"}
			}
			h.Path = v.Value
		case "timeout":
			d, err := time.ParseDuration(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || d <= 0 || d > time.Hour {
				return &ManifestError{Line: v.Line, Field: "health.timeout", Reason: fmt.Sprintf("%q is not a duration between 0 and 1h such as 10s", v.Value)}
			}
			h.Timeout = d
		default:
			return &ManifestError{Line: key.Line, Field: "health." + key.Value, Reason: "unknown field (known: path, timeout)"}
		}
	}
	return nil
}

func parseVolumes(val *yaml.Node) (map[string]string, error) {
	if val.Kind != yaml.MappingNode {
		return nil, &ManifestError{Line: val.Line, Field: "volumes", Reason: "must map volume names to mount paths"}
	}
	out := map[string]string{}
	for i := 0; i+1 < len(val.Content); i += 2 {
		key, v := val.Content[i], val.Content[i+1]
		if !volumeName.MatchString(key.Value) {
			return nil, &ManifestError{Line: key.Line, Field: "volumes." + key.Value, Reason: "volume names are lowercase letters, digits and dashes, starting with a letter"}
		}
		if v.Kind != yaml.ScalarNode || !strings.HasPrefix(v.Value, "/") || strings.Contains(v.Value, "..") {
			return nil, &ManifestError{Line: v.Line, Field: "volumes." + key.Value, Reason: "must be an absolute mount path"}
		}
		out[key.Value] = v.Value
	}
	return out, nil
}

// yamlError turns a YAML syntax error into a ManifestError with its line.
func yamlError(err error) error {
	msg := strings.TrimSpace(err.Error())
	if m := yamlLineInfo.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &ManifestError{Line: line, Reason: "does not parse: " + m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return &ManifestError{Reason: "does not parse: " + te.Errors[0]}
	}
	return &ManifestError{Reason: "does not parse: " + strings.TrimPrefix(msg, "yaml: ")}
}

// validHealthPath reports whether p can go into a request line as it is: the
// health check sends it to the app verbatim.
func validHealthPath(p string) bool {
	if len(p) > 1024 || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f || p[i] == '#' {
			return false
		}
	}
	_, err := url.ParseRequestURI(p)
	return err == nil
}

// ToolchainImage is the image for an app whose language was detected and
// whose manifest names no image: slipway/busybox has no python3, node, go or
// ruby, and slipway/debian has them all.
const ToolchainImage = "slipway/debian"

// App is what a commit deploys, its manifest, Procfile and detected language
// resolved into one: the manifest wins over the Procfile, which wins over
// what detection would default to.
type App struct {
	Image     string
	Build     []detect.Step    // in order, each named for the log
	Release   []string         // run once before traffic moves; not supervised
	Processes []detect.Process // supervised, in order; web is among them
	// Env goes beneath the installation's config, for build steps and
	// processes alike; BuildEnv (beneath Env) for build steps only.
	Env, BuildEnv map[string]string
	Health        Health
	Volumes       map[string]string
	Log           []string // what was found, to print before the build
}

// Web is the web process's command.
func (a *App) Web() string {
	for _, p := range a.Processes {
		if p.Name == "web" {
			return p.Command
		}
	}
	return ""
}

// Manifest is the app as a Manifest, for the code that reads one (volumes,
// health, image); the build steps lose their names.
func (a *App) Manifest() *Manifest {
	m := &Manifest{Image: a.Image, Release: a.Release, Web: a.Web(), Processes: a.Processes,
		Health: a.Health, Volumes: a.Volumes, hasBuild: true}
	for _, s := range a.Build {
		m.Build = append(m.Build, s.Command)
	}
	return m
}

// NoWebError says a commit gives nothing to serve and what would.
type NoWebError struct {
	Detected string // "Python app detected (requirements.txt)", or ""
	Sources  string // what was read: "slipway.yml and Procfile", or ""
}

func (e *NoWebError) Error() string {
	const add = "add `web: <command serving on $PORT>` to a Procfile or to " + ManifestFile
	switch {
	case e.Detected != "":
		return e.Detected + ", but no web process: " + add
	case e.Sources != "":
		return "no web process in " + e.Sources + ": " + add
	}
	return "nothing to run: " + add + ", or files slipway builds by itself (" + detect.Markers + ")"
}

// LoadApp reads slipway.yml and the Procfile from files (either may be
// absent) and resolves the app.
func LoadApp(files detect.Files) (*App, error) {
	manifest, err := optionalFile(files, ManifestFile)
	if err != nil {
		return nil, err
	}
	procfile, err := optionalFile(files, detect.ProcfileName)
	if err != nil {
		return nil, err
	}
	return ResolveApp(manifest, procfile, files)
}

func optionalFile(files detect.Files, path string) ([]byte, error) {
	if !files.Exists(path) {
		return nil, nil
	}
	data, err := files.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// ResolveApp resolves what a commit deploys from its slipway.yml and
// Procfile (nil when absent) and, when the manifest gives no build (not even
// `build: []`), the language detected in files.
func ResolveApp(manifest, procfile []byte, files detect.Files) (*App, error) {
	m := &Manifest{Health: defaultHealth}
	if manifest != nil {
		var err error
		if m, err = parseManifestPart(manifest); err != nil {
			return nil, err
		}
	}
	var procs []detect.Process
	if procfile != nil {
		var err error
		if procs, err = detect.ParseProcfile(procfile); err != nil {
			return nil, err
		}
	}
	a := &App{Image: m.Image, Release: m.Release, Health: m.Health, Volumes: m.Volumes}
	for _, cmd := range m.Build {
		a.Build = append(a.Build, detect.Step{Name: "build: " + cmd, Command: cmd})
	}
	a.Processes, a.Release = a.pickProcesses(m, procs, procfile != nil)
	var plan detect.Plan
	detected := false
	if !m.hasBuild {
		plan, detected = detect.Detect(files)
	}
	if detected {
		a.useDetected(plan)
	}
	if a.Image == "" {
		a.Image = DefaultImage
	}
	if a.Web() == "" {
		return nil, noWeb(plan, detected, manifest != nil, procfile != nil)
	}
	return a, nil
}

// pickProcesses: the manifest's processes replace the Procfile's whole (so
// it can leave one out); the Procfile's release type is the release step
// unless the manifest has its own.
func (a *App) pickProcesses(m *Manifest, procfile []detect.Process, haveProcfile bool) ([]detect.Process, []string) {
	release := m.Release
	if len(m.Processes) > 0 {
		if haveProcfile {
			a.Log = append(a.Log, "-----> Procfile ignored: "+ManifestFile+" sets the processes")
		}
		return m.Processes, release
	}
	var out []detect.Process
	var names []string
	for _, p := range procfile {
		names = append(names, p.Name)
		if p.Name != "release" {
			out = append(out, p)
		} else if len(release) == 0 {
			release = []string{p.Command}
		}
	}
	if len(names) > 0 {
		a.Log = append(a.Log, "-----> Procfile: "+strings.Join(names, ", "))
	}
	return out, release
}

// useDetected adds what detection found: its build (the manifest gave
// none), its env, its default processes for the types not given, and the
// image with its tools when the manifest names none.
func (a *App) useDetected(p detect.Plan) {
	a.Log = append(a.Log, "-----> "+p.Detected())
	a.Build, a.Env, a.BuildEnv = p.Build, p.Env, p.BuildEnv
	if a.Image == "" && p.Toolchain {
		a.Image = ToolchainImage
		a.Log = append(a.Log, fmt.Sprintf("       Image %s, which has the %s tools (image: in %s chooses another)", ToolchainImage, p.Language, ManifestFile))
	}
	for _, d := range p.Processes {
		if !hasProcess(a.Processes, d.Name) {
			a.Processes = append(a.Processes, d)
			a.Log = append(a.Log, fmt.Sprintf("       %s: %s (the %s default; a Procfile line %s: ... replaces it)", d.Name, d.Command, p.Language, d.Name))
		}
	}
}

func hasProcess(procs []detect.Process, name string) bool {
	for _, p := range procs {
		if p.Name == name {
			return true
		}
	}
	return false
}

func noWeb(p detect.Plan, detected, haveManifest, haveProcfile bool) error {
	e := &NoWebError{}
	if detected {
		e.Detected = p.Detected()
	}
	var read []string
	if haveManifest {
		read = append(read, ManifestFile)
	}
	if haveProcfile {
		read = append(read, detect.ProcfileName)
	}
	e.Sources = strings.Join(read, " and ")
	return e
}
