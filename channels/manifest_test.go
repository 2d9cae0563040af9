package channels

import (
	"errors"
	"strings"
	"testing"
	"time"
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
