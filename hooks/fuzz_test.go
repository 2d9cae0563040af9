package hooks

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzCommandPeeker feeds the pkt-line peeker any stream: it passes the stream through
// untouched, reports branches at most once, and reports the same ones whether the
// stream comes whole or a byte at a time.
func FuzzCommandPeeker(f *testing.F) {
	zero, a := strings.Repeat("0", 40), strings.Repeat("1", 40)
	f.Add([]byte(pkt(zero+" "+a+" refs/heads/main\x00 report-status side-band-64k\n") + pkt(a+" "+zero+" refs/heads/gone\n") + "0000PACK"))
	f.Add([]byte(pkt(a+" "+a+" refs/tags/v1") + "0000"))
	f.Add([]byte("0003zzzz0000"))
	f.Add([]byte("00000000"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		whole, wholeCalls := peek(t, bytes.NewReader(stream), stream)
		bytewise, calls := peek(t, iotest.OneByteReader(bytes.NewReader(stream)), stream)
		if wholeCalls > 1 || calls != wholeCalls || !slices.Equal(whole, bytewise) {
			t.Fatalf("whole: %q (%d calls); a byte at a time: %q (%d calls)", whole, wholeCalls, bytewise, calls)
		}
	})
}

func peek(t *testing.T, r io.Reader, stream []byte) (branches []string, calls int) {
	p := newCommandPeeker(r, func(b []string) {
		calls++
		branches = b
	})
	out, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(out, stream) {
		t.Fatalf("stream changed: %q, %v", out, err)
	}
	return branches, calls
}

// FuzzSplitWords splits any command line without panicking, with a one-line error;
// and words quoted as shellQuote (and git) quote them split back to the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"git-receive-pack '/hello'", `x "a \"b\" \n $HOME"`, `x it\'s a\ b`, `x ''`, `status 'shop/prod`, `x \`} {
		f.Add(s, "a", "it's")
	}
	f.Fuzz(func(t *testing.T, line, w1, w2 string) {
		if _, err := splitWords(line); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
		words := []string{w1, w2}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = shellQuote(w)
		}
		got, err := splitWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(got, words) {
			t.Fatalf("%q quoted as %q split into %q, %v", words, quoted, got, err)
		}
	})
}
