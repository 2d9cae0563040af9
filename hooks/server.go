// Package hooks is slipway's SSH server: it authenticates keys, serves git
// push and fetch for app repositories, turns a push into "ref X moved from A
// to B" for the engine, streams the resulting operations back as "remote:"
// lines, and answers SSH commands.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// DefaultMaxPushBytes is the daemon's default limit on a push's pack (a zero
// Config.MaxPushBytes means no limit).
const DefaultMaxPushBytes = 1 << 30

// Config is the SSH server's part of the daemon configuration.
type Config struct {
	Addr         string        // where to listen, e.g. 127.0.0.1:2222
	DataDir      string        // host key, hook socket and git hook scripts live here
	ReposDir     string        // bare repositories, APP.git
	Binary       string        // the slipway executable git hooks call back into
	MaxPushBytes int64         // largest pack a push may send; 0 means no limit
	WebURL       func() string // base URL of the web page, for sign-in links (known once the web listener is bound)
	// DatabaseBackupSchedule is when databases without their own schedule
	// are backed up, as db schedule shows it.
	DatabaseBackupSchedule string
	// ProxyAddr is where the front proxy serves HTTP, for the URLs people
	// are given.
	ProxyAddr func() string
}

// Server is the SSH server.
type Server struct {
	cfg    Config
	store  *store.Store
	engine *channels.Engine
	log    *slog.Logger

	ssh      *ssh.Server
	listener net.Listener
	hooks    *hookListener
	wg       sync.WaitGroup

	mu     sync.Mutex
	pushes map[string]*push // by push ID, while git receive-pack runs
}

type ctxKey int

const (
	userKey        ctxKey = iota // the store.User a key belongs to
	fingerprintKey               // the SHA256 fingerprint of the key the user signed in with
)

// New makes a server; Start binds it.
func New(cfg Config, st *store.Store, engine *channels.Engine, logger *slog.Logger) *Server {
	return &Server{cfg: cfg, store: st, engine: engine, log: logger, pushes: map[string]*push{}}
}

// Start binds the SSH port and the hook socket and serves in the background.
func (s *Server) Start() error {
	signer, err := loadHostKey(filepath.Join(s.cfg.DataDir, HostKeyFile))
	if err != nil {
		return err
	}
	if err := s.writeGitHooks(); err != nil {
		return err
	}
	s.hooks, err = listenHooks(filepath.Join(s.cfg.DataDir, "run", "hooks.sock"), s.serveHook, s.log)
	if err != nil {
		return err
	}
	s.ssh = &ssh.Server{
		Handler:          s.handleSession,
		PublicKeyHandler: s.authenticate,
		Version:          "slipway",
		ConnectionFailedCallback: func(conn net.Conn, err error) {
			s.log.Debug("SSH connection failed", "remote", conn.RemoteAddr(), "err", err)
		},
	}
	s.ssh.AddHostKey(signer)
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.hooks.Close()
		return fmt.Errorf("listen for SSH on %s: %w", s.cfg.Addr, err)
	}
	s.listener = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.ssh.Serve(ln); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
			s.log.Error("SSH server stopped", "err", err)
		}
	}()
	s.log.Info("SSH server listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the bound SSH address.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Close stops accepting connections and closes open ones.
func (s *Server) Close() error {
	var err error
	if s.ssh != nil {
		err = s.ssh.Close()
	}
	if s.hooks != nil {
		s.hooks.Close()
	}
	s.wg.Wait()
	return err
}

// authenticate accepts a key only when it is registered; the client then says
// "Permission denied (publickey)" like every git host does.
func (s *Server) authenticate(ctx ssh.Context, key ssh.PublicKey) bool {
	fp := gossh.FingerprintSHA256(key)
	user, err := s.store.UserByFingerprint(context.Background(), fp)
	if err != nil {
		s.log.Info("SSH key refused", "fingerprint", fp, "remote", ctx.RemoteAddr().String(), "reason", err)
		return false
	}
	ctx.SetValue(userKey, user)
	ctx.SetValue(fingerprintKey, fp)
	return true
}

func (s *Server) handleSession(sess ssh.Session) {
	user, ok := sess.Context().Value(userKey).(store.User)
	if !ok {
		fmt.Fprintln(sess.Stderr(), "slipway: not signed in")
		sess.Exit(1)
		return
	}
	args, err := commandWords(sess.RawCommand())
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "slipway: %s\n", err)
		sess.Exit(1)
		return
	}
	if len(args) == 0 {
		fmt.Fprintf(sess.Stderr(), "Hi %s! slipway has no interactive shell; try: ssh -p PORT git@HOST help\n", user.Name)
		sess.Exit(1)
		return
	}
	switch args[0] {
	case "git-receive-pack", "git-upload-pack":
		sess.Exit(s.serveGit(sess, user, args[0], args[1:]))
	case "git":
		if len(args) > 1 && (args[1] == "receive-pack" || args[1] == "upload-pack") {
			sess.Exit(s.serveGit(sess, user, "git-"+args[1], args[2:]))
			return
		}
		fallthrough
	default:
		sess.Exit(s.runCommand(sess, user, args))
	}
}

// ParseAuthorizedKey reads one public key line and returns it with its fingerprint.
func ParseAuthorizedKey(line []byte) (gossh.PublicKey, string, error) {
	key, _, _, _, err := gossh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, "", fmt.Errorf("not an SSH public key: %w", err)
	}
	return key, gossh.FingerprintSHA256(key), nil
}

// EnsureAdmin registers the first admin from a public key file on first start.
func EnsureAdmin(ctx context.Context, st *store.Store, keyFile string) (created bool, err error) {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 || keyFile == "" {
		return false, err
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return false, fmt.Errorf("admin key: %w", err)
	}
	key, fp, err := ParseAuthorizedKey(data)
	if err != nil {
		return false, fmt.Errorf("admin key %s: %w", keyFile, err)
	}
	user, err := st.CreateUser(ctx, "admin", true)
	if err != nil {
		return false, err
	}
	return true, st.AddKey(ctx, user.ID, fp, string(gossh.MarshalAuthorizedKey(key)))
}
