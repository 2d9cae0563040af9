package channels

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ManifestFile is the manifest's path at the root of an app's repository.
const ManifestFile = "slipway.yml"

// DefaultImage is the base image used when a manifest names none.
const DefaultImage = "slipway/busybox"

// Manifest is an app's slipway.yml: how to build, release and run it.
type Manifest struct {
	Image   string            // Incus image alias
	Build   []string          // run in /app of the new instance, in order
	Release []string          // run once before traffic moves (migrations)
	Web     string            // long-running; must listen on $PORT
	Health  Health            // how to tell the new instance is ready
	Volumes map[string]string // persistent volume name -> mount path
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

// ParseManifest reads and checks a slipway.yml.
func ParseManifest(data []byte) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if len(doc.Content) == 0 {
		return nil, &ManifestError{Reason: "is empty; it needs at least a web command"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &ManifestError{Line: root.Line, Reason: "must be a mapping of fields (image, build, release, web, health, volumes)"}
	}
	m := &Manifest{Image: DefaultImage, Health: Health{Path: "/", Timeout: 30 * time.Second}}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if seen[key.Value] {
			return nil, &ManifestError{Line: key.Line, Field: key.Value, Reason: "appears twice"}
		}
		seen[key.Value] = true
		var err error
		switch key.Value {
		case "image":
			m.Image, err = scalar(key, val)
			if err == nil && m.Image == "" {
				err = &ManifestError{Line: val.Line, Field: "image", Reason: "must name an Incus image alias"}
			}
		case "build":
			m.Build, err = commands(key, val)
		case "release":
			m.Release, err = commands(key, val)
		case "web":
			m.Web, err = scalar(key, val)
		case "health":
			err = parseHealth(val, &m.Health)
		case "volumes":
			m.Volumes, err = parseVolumes(val)
		default:
			err = &ManifestError{Line: key.Line, Field: key.Value, Reason: "unknown field (known: image, build, release, web, health, volumes)"}
		}
		if err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(m.Web) == "" {
		return nil, &ManifestError{Line: root.Line, Field: "web", Reason: "is missing: give the command that serves the app on $PORT"}
	}
	return m, nil
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
