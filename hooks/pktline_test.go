package hooks

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func TestCommandPeekerSeesBranchesAndPassesEverything(t *testing.T) {
	zero := "0000000000000000000000000000000000000000"
	a, b := "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	stream := pkt(zero+" "+a+" refs/heads/main\x00 report-status side-band-64k\n") +
		pkt(a+" "+b+" refs/heads/feature/x\n") +
		pkt(a+" "+zero+" refs/heads/gone\n") +
		pkt(zero+" "+a+" refs/tags/v1\n") +
		"0000" + "PACK\x00\x00\x00\x02 pack data that is not pkt-lines"
	var got []string
	calls := 0
	p := newCommandPeeker(iotest.OneByteReader(bytes.NewBufferString(stream)), func(branches []string) {
		calls++
		got = branches
	})
	out, err := io.ReadAll(p)
	if err != nil || string(out) != stream {
		t.Fatalf("stream changed: %q %v", out, err)
	}
	if calls != 1 || !reflect.DeepEqual(got, []string{"main", "feature/x"}) {
		t.Fatalf("branches %v (%d calls)", got, calls)
	}
}

func TestCommandPeekerGivesUpOnGarbage(t *testing.T) {
	calls := 0
	p := newCommandPeeker(bytes.NewBufferString("zzzz not a pkt-line"), func([]string) { calls++ })
	out, _ := io.ReadAll(p)
	if string(out) != "zzzz not a pkt-line" || calls != 0 {
		t.Fatalf("out %q calls %d", out, calls)
	}
}
