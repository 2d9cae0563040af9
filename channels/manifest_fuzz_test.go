package channels

import (
	"strings"
	"testing"
)

// FuzzParseManifest reads any slipway.yml without panicking; a refusal is one line,
// as the push output shows it.
func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		"web: ./server\n",
		"image: slipway/debian\nbuild:\n  - make\nbefore_release: ./migrate\nprocesses:\n  web: ./server\n  worker: ./work\n",
		"web: ./server\nhealth:\n  path: /up\n  timeout: 5s\nvolumes:\n  data: /var/lib/app\n",
		"web: [unclosed\n",
		"- a list\n",
		"web: ./a\nweb: ./b\n",
		"web: &a ./s\nbuild: *a\n",
		"\tweb: tab\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (*Manifest, error){ParseManifest, parseManifestPart} {
			m, err := parse(data)
			if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			if err == nil && m == nil {
				t.Fatal("no manifest and no error")
			}
		}
	})
}
