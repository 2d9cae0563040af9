package hooks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/slipway-dev/slipway/channels"
)

// The hook socket joins a git hook process (started by git receive-pack) back
// to the daemon that started receive-pack. The hook sends one JSON request;
// the daemon answers with JSON lines of output and a final exit status.
type hookReply struct {
	Out  string `json:"out,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

type hookHandler func(ctx context.Context, req hookRequest, out io.Writer) int

type hookListener struct {
	path   string
	ln     net.Listener
	handle hookHandler
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func listenHooks(path string, handle hookHandler, logger *slog.Logger) (*hookListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	os.Remove(path) // left by a daemon that did not stop cleanly
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on hook socket %s: %w", path, err)
	}
	os.Chmod(path, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	h := &hookListener{path: path, ln: ln, handle: handle, log: logger, ctx: ctx, cancel: cancel}
	h.wg.Add(1)
	go h.serve()
	return h, nil
}

func (h *hookListener) serve() {
	defer h.wg.Done()
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer conn.Close()
			h.serveConn(conn)
		}()
	}
}

func (h *hookListener) serveConn(conn net.Conn) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	var req hookRequest
	rd := bufio.NewReader(conn)
	line, err := rd.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &req) != nil {
		return
	}
	// The hook sends nothing after its request; EOF means git (or the pusher) went away.
	go func() {
		io.Copy(io.Discard, rd)
		cancel()
	}()
	w := &replyWriter{enc: json.NewEncoder(conn)}
	code := h.handle(ctx, req, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enc.Encode(hookReply{Exit: &code})
}

func (h *hookListener) Close() {
	h.cancel()
	h.ln.Close()
	h.wg.Wait()
	os.Remove(h.path)
}

// replyWriter frames output written by a handler as hook replies, one per line.
type replyWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *replyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(hookReply{Out: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// RunHook is the git hook side (`slipway hook NAME`): it reads the ref updates
// git gives on stdin, asks the daemon, copies its output to stderr (git shows
// it to the pusher as "remote:" lines) and returns the exit status.
func RunHook(name string, stdin io.Reader, stderr io.Writer) int {
	socket, pushID := os.Getenv("SLIPWAY_HOOK_SOCKET"), os.Getenv("SLIPWAY_PUSH_ID")
	if socket == "" || pushID == "" {
		return 0
	}
	req := hookRequest{PushID: pushID, Hook: name}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			u := channels.RefUpdate{Old: f[0], New: f[1], Name: f[2]}
			if name == "pre-receive" && !u.Created() && !u.Deleted() {
				// Only here, inside receive-pack's quarantine, are the pushed
				// objects visible; the daemon could not tell a force push.
				u.Rewrite = exec.Command("git", "merge-base", "--is-ancestor", u.Old, u.New).Run() != nil
			}
			req.Updates = append(req.Updates, u)
		}
	}
	for i := 0; ; i++ {
		v, ok := os.LookupEnv(fmt.Sprintf("GIT_PUSH_OPTION_%d", i))
		if !ok {
			break
		}
		req.PushOptions = append(req.PushOptions, v)
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Fprintf(stderr, "slipway: the daemon is not answering (%s)\n", err)
		return 1
	}
	defer conn.Close()
	body, _ := json.Marshal(req)
	if _, err := conn.Write(append(body, '\n')); err != nil {
		fmt.Fprintf(stderr, "slipway: the daemon is not answering (%s)\n", err)
		return 1
	}
	dec := json.NewDecoder(conn)
	for {
		var r hookReply
		if err := dec.Decode(&r); err != nil {
			fmt.Fprintln(stderr, "slipway: the daemon went away before the end of this push's operations")
			return 1
		}
		if r.Out != "" {
			io.WriteString(stderr, r.Out)
		}
		if r.Exit != nil {
			return *r.Exit
		}
	}
}
