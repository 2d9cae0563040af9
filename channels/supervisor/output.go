package supervisor

import (
	"bufio"
	"errors"
	"io"
	"os"
)

// MaxLogLine is where a process's output line is cut.
const MaxLogLine = 16 << 10

const cutMark = " [line cut at 16 KiB]"

// capture copies r into the ring line by line until EOF, then closes r and
// done. A line longer than MaxLogLine is kept cut, with a mark, and the
// rest of it dropped: one endless line must not hold memory.
func capture(lg *ring, process, stream string, r *os.File, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	br := bufio.NewReaderSize(r, MaxLogLine)
	skipping := false
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if !skipping {
				lg.add(process, stream, trimEOL(line))
			}
			skipping = false
		case errors.Is(err, bufio.ErrBufferFull):
			if !skipping {
				lg.add(process, stream, string(line)+cutMark)
			}
			skipping = true
		default:
			if len(line) > 0 && !skipping {
				lg.add(process, stream, string(line))
			}
			if err != io.EOF {
				lg.add(EventProcess, StreamEvent, process+" "+stream+": "+oneLine(err.Error()))
			}
			return
		}
	}
}

func trimEOL(b []byte) string {
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return string(b)
}
