package container

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestWriteDelivery(t *testing.T) {
	tree := func(entries ...*tar.Header) io.Reader {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			tw.WriteHeader(h)
			if h.Size > 0 {
				io.WriteString(tw, strings.Repeat("x", int(h.Size)))
			}
		}
		tw.Close()
		return &buf
	}
	var out bytes.Buffer
	err := writeDelivery(&out, tree(
		&tar.Header{Name: "public/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "public/index.html", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	), "#!/bin/sh\nexec httpd\n")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&out)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "etc/slipway/web.new" {
			body, _ := io.ReadAll(tr)
			if string(body) != "#!/bin/sh\nexec httpd\n" || h.Mode != 0o755 {
				t.Errorf("web script %q mode %o", body, h.Mode)
			}
		}
	}
	if got := strings.Join(names, " "); got != "app/public/ app/public/index.html app/link etc/slipway/web.new" {
		t.Errorf("entries: %s", got)
	}

	// Nothing of the tree may land outside /app.
	for _, bad := range []string{"../etc/passwd", "a/../../etc/passwd", "/etc/passwd", "..", "."} {
		err := writeDelivery(io.Discard, tree(&tar.Header{Name: bad, Typeflag: tar.TypeReg, Mode: 0o644}), "x")
		if err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("entry %q: %v", bad, err)
		}
	}
	err = writeDelivery(io.Discard, tree(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}), "x")
	if err == nil || !strings.Contains(err.Error(), "hard link outside") {
		t.Errorf("hard link out of the tree: %v", err)
	}
}
