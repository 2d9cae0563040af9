// Package frontproxy runs the front proxy as a process of its own (`slipway
// proxy`), so traffic does not wait on the daemon: it serves from its state
// file when it starts, takes route changes over a unix socket, and hands its
// sockets to a new process of itself on upgrade. The daemon side (keeper.go)
// starts it when it is not running and again when it dies.
package frontproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/router"
)

// Config is what a proxy process runs with.
type Config struct {
	Addr    string           // where it serves HTTP
	Dir     string           // its files (see Paths): DirIn(the data directory)
	Project string           // the Incus project whose instances it reaches
	Incus   container.Remote // the incusd's HTTPS API; URL "": its unix socket
	// AgentAddr is where this member's slipway agent listens when Incus is a
	// cluster (see JoinCluster); AgentDir holds the cluster's certificate.
	AgentAddr, AgentDir string
	Version             string // said in its Hello

	MaxConnsPerIP int // client connections kept open from one address; 0: no cap

	HTTPSAddr      string         // where it serves HTTPS; "": no HTTPS listener
	CertDir        string         // NAME.crt and NAME.key pairs, read at start and on ReloadCerts
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For, -Proto and CF-Connecting-IP are kept
}

// CertDirIn is the certificate directory in slipway's data directory.
func CertDirIn(data string) string { return filepath.Join(data, "certs") }

// DirIn is the proxy's directory in slipway's data directory.
func DirIn(data string) string { return filepath.Join(data, "proxy") }

// Paths are a proxy's files in its directory.
type Paths struct{ Socket, State, PID, Log string }

// PathsIn returns the paths of the proxy files in dir.
func PathsIn(dir string) Paths {
	return Paths{
		Socket: filepath.Join(dir, "proxy.sock"),
		State:  filepath.Join(dir, "routes.json"),
		PID:    filepath.Join(dir, "proxy.pid"),
		Log:    filepath.Join(dir, "proxy.log"),
	}
}

// shutdownGrace bounds how long requests in flight may finish when the proxy
// stops or hands over to a new process.
const shutdownGrace = 30 * time.Second

// Run serves until ctx ends or a new process has taken over.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	syscall.Umask(0o077)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return err
	}
	paths := PathsIn(cfg.Dir)
	// The path, resolved now: once an upgrade has replaced the file, this
	// process's own /proc/self/exe names the old one, deleted.
	binary, err := os.Executable()
	if err != nil {
		return err
	}
	rt, err := container.ConnectTo(cfg.Incus, cfg.Project, "", logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	cluster, err := JoinCluster(rt, cfg.AgentAddr, cfg.AgentDir, logger)
	if err != nil {
		return err
	}
	if cluster != nil && cluster.Server != nil {
		// Instances placed on this member mount the supervisor from the
		// same path as on the daemon's: put it there.
		if _, err := container.InstallSupervisor(filepath.Join(filepath.Dir(binary), container.SupervisorBinary), SupervisorDirIn(filepath.Dir(cfg.Dir))); err != nil {
			return fmt.Errorf("on a cluster member: %w", err)
		}
		agentServer := cluster.Server
		ln, err := listenShared(ctx, cfg.AgentAddr)
		if err != nil {
			return fmt.Errorf("the slipway agent: %w", err)
		}
		defer ln.Close()
		agentServer.Control = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", paths.Socket)
		}
		go agentServer.Serve(ln)
		logger.Info("The slipway agent serves this member's instances to the cluster", "addr", ln.Addr().String())
	}
	px := proxy.New(logger)
	px.MaxConnsPerIP = cfg.MaxConnsPerIP
	px.TrustedProxies = cfg.TrustedProxies
	table, err := router.Open(px, router.WithLocal(rt.Dial), paths.State)
	if err != nil {
		return err
	}
	if cfg.CertDir != "" {
		table.UseCertDir(cfg.CertDir)
		if _, err := table.LoadCerts(ctx); err != nil {
			logger.Warn("No certificates loaded", "dir", cfg.CertDir, "err", err)
		}
	}
	inheritedChallenges(ctx, table, logger)
	web, control, err := listeners(cfg.Addr, paths.Socket)
	if err != nil {
		return err
	}
	secure, err := httpsListener(cfg.HTTPSAddr)
	if err != nil {
		web.Close()
		control.Close()
		return err
	}
	p := &process{cfg: cfg, paths: paths, binary: binary, logger: logger, px: px, table: table, web: web, secure: secure, control: control,
		handedOver: make(chan struct{})}
	return p.serve(ctx)
}

// process is one running proxy.
type process struct {
	cfg     Config
	paths   Paths
	binary  string
	logger  *slog.Logger
	px      *proxy.Proxy
	table   *router.Table
	web     net.Listener
	secure  net.Listener // HTTPS, or nil
	control *net.UnixListener
	server  *router.Server

	handedOver chan struct{} // closed once a new process serves in this one's place
}

func (p *process) serve(ctx context.Context) error {
	hello := router.Hello{PID: os.Getpid(), Addr: p.web.Addr().String(), Version: p.cfg.Version}
	if p.secure != nil {
		hello.HTTPSAddr = p.secure.Addr().String()
	}
	p.server = router.NewServer(p.table, hello, p.logger)
	p.server.Upgrade = p.upgrade
	if err := writePID(p.paths.PID); err != nil {
		return err
	}
	go p.px.Serve(p.web)
	if p.secure != nil {
		go p.px.ServeTLS(p.secure)
	}
	go p.server.Serve(p.control)
	if err := ready(); err != nil {
		p.logger.Warn("Could not tell systemd the proxy serves", "err", err)
	}
	p.logger.Info("slipway proxy is serving", "addr", hello.Addr, "https", hello.HTTPSAddr, "pid", hello.PID, "control", p.paths.Socket)
	select {
	case <-ctx.Done():
		p.control.Close() // and the socket file with it: no one answers there now
		removePID(p.paths.PID)
	case <-p.handedOver:
		p.logger.Info("A new proxy process serves; finishing the requests in flight")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := p.px.Shutdown(sctx)
	if err != nil {
		p.px.Close()
	}
	p.server.CloseWatches()
	return nil
}

// listeners returns the HTTP and control listeners: those a previous process
// handed over, or new ones.
func listeners(addr, socket string) (net.Listener, *net.UnixListener, error) {
	if inherited() {
		return inheritedListeners()
	}
	web, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for HTTP on %s: %w", addr, err)
	}
	control, err := listenControl(socket)
	if err != nil {
		web.Close()
		return nil, nil, err
	}
	return web, control, nil
}

// httpsListener returns the HTTPS listener: the one a previous process handed
// over, or a new one; nil when addr is "".
func httpsListener(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	if ln, err := inheritedHTTPS(); ln != nil || err != nil {
		return ln, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTPS on %s: %w", addr, err)
	}
	return ln, nil
}

// listenControl listens on the control socket, replacing a stale socket file
// but refusing to take over one a live proxy answers on.
func listenControl(socket string) (*net.UnixListener, error) {
	if conn, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("a proxy already runs here: it answers on %s", socket)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	return ln, nil
}

// writePID writes this process's pid to path, atomically.
func writePID(path string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removePID removes the pid file if it still names this process.
func removePID(path string) {
	if pid, err := ReadPID(path); err == nil && pid == os.Getpid() {
		os.Remove(path)
	}
}

// ReadPID reads a proxy's pid file.
func ReadPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(trimNewline(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a pid", path)
	}
	return pid, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Running reports whether pid is a live process; a zombie, which a parent
// that does not reap leaves behind, serves nobody and is not.
func Running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && !strings.HasPrefix(string(stat[i:]), ") Z")
}
