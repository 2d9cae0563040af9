package hooks

import (
	"bytes"
	"io"
	"strconv"
	"strings"
)

// commandPeeker passes a push's stream through to git receive-pack untouched
// while it reads the ref update commands at its start (pkt-lines up to the
// first flush), so slipway learns which branches a push updates before the
// pack arrives.
type commandPeeker struct {
	r      io.Reader
	buf    bytes.Buffer
	done   bool
	onRefs func(branches []string)
}

func newCommandPeeker(r io.Reader, onRefs func(branches []string)) *commandPeeker {
	return &commandPeeker{r: r, onRefs: onRefs}
}

func (p *commandPeeker) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && !p.done {
		p.buf.Write(b[:n])
		p.parse()
	}
	return n, err
}

// parse reads the complete pkt-lines in the buffer; at the flush packet it
// reports the branches that are created or updated (not deleted).
func (p *commandPeeker) parse() {
	data := p.buf.Bytes()
	var commands []string
	for len(data) >= 4 {
		size, err := strconv.ParseUint(string(data[:4]), 16, 16)
		if err != nil || (size > 0 && size < 4) {
			p.giveUp()
			return
		}
		if size == 0 { // flush: the command list is complete
			p.giveUp()
			p.onRefs(branchesOf(commands))
			return
		}
		if len(data) < int(size) {
			break
		}
		line, _, _ := strings.Cut(string(data[4:size]), "\x00") // capabilities follow the first command
		commands = append(commands, strings.TrimSuffix(line, "\n"))
		data = data[size:]
	}
	if p.buf.Len() > 1<<20 {
		p.giveUp()
	}
}

// giveUp stops looking: the stream still passes through untouched.
func (p *commandPeeker) giveUp() {
	p.done = true
	p.buf = bytes.Buffer{}
}

// branchesOf picks the branches updated or created by "old new ref" commands.
func branchesOf(commands []string) []string {
	var out []string
	for _, c := range commands {
		f := strings.Fields(c)
		if len(f) != 3 || strings.Trim(f[1], "0") == "" {
			continue // malformed, or a delete
		}
		if b, ok := strings.CutPrefix(f[2], "refs/heads/"); ok {
			out = append(out, b)
		}
	}
	return out
}
