package container

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
)

// exportVolumeDir holds a volume's files in the tarball of an Incus custom
// volume backup (beside backup/index.yaml).
const exportVolumeDir = "backup/volume/"

// ReadExport reads a tarball ExportVolume wrote, to the end of its gzip
// stream, and returns the SHA-256 of every regular file (and hard link) of
// the volume by relative path, as VolumeChecksums does. A damaged tarball
// fails here: gzip checks its CRC, tar its headers.
func (c *Incus) ReadExport(r io.Reader) (map[string]string, error) { return ReadExport(r) }

// ReadExport is (*Incus).ReadExport, which needs no server.
func ReadExport(r io.Reader) (map[string]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rel, ok := strings.CutPrefix(hdr.Name, exportVolumeDir)
		if !ok || rel == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			fh := sha256.New()
			if _, err := io.Copy(fh, tr); err != nil {
				return nil, err
			}
			files[rel] = hex.EncodeToString(fh.Sum(nil))
		case tar.TypeLink:
			if sum, ok := files[strings.TrimPrefix(hdr.Linkname, exportVolumeDir)]; ok {
				files[rel] = sum
			}
		}
	}
	// The rest: tar padding, the gzip trailer (its CRC is checked on EOF).
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, err
	}
	return files, nil
}
