package container_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/slipway-dev/slipway/channels/container"
)

// exportTarball writes a tarball in the layout of an Incus custom volume
// backup: backup/index.yaml, the volume's files under backup/volume/.
func exportTarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(h tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(tar.Header{Name: "backup/index.yaml", Mode: 0o644, Typeflag: tar.TypeReg}, "name: v\ntype: custom\n")
	add(tar.Header{Name: "backup/volume/", Mode: 0o711, Typeflag: tar.TypeDir}, "")
	add(tar.Header{Name: "backup/volume/a.txt", Mode: 0o644, Typeflag: tar.TypeReg}, "first\n")
	add(tar.Header{Name: "backup/volume/sub/b", Mode: 0o644, Typeflag: tar.TypeReg}, "x\ny")
	add(tar.Header{Name: "backup/volume/hard", Typeflag: tar.TypeLink, Linkname: "backup/volume/a.txt"}, "")
	add(tar.Header{Name: "backup/volume/soft", Typeflag: tar.TypeSymlink, Linkname: "a.txt"}, "")
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestReadExportChecksumsTheVolumesFiles(t *testing.T) {
	data := exportTarball(t)
	got, err := container.ReadExport(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.txt": sum("first\n"), "sub/b": sum("x\ny"), "hard": sum("first\n")}
	if len(got) != len(want) {
		t.Errorf("read %v, want %v", got, want)
	}
	for path, s := range want {
		if got[path] != s {
			t.Errorf("%s: %s, want %s", path, got[path], s)
		}
	}
	// A damaged tarball does not read.
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0xff
	if _, err := container.ReadExport(bytes.NewReader(bad)); err == nil {
		t.Error("a damaged tarball read")
	}
}
