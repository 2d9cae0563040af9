package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/applog"
	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/database"
	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
	"github.com/slipway-dev/slipway/daemon/version"
	"github.com/slipway-dev/slipway/hooks"
	"github.com/slipway-dev/slipway/store"
	"github.com/slipway-dev/slipway/web"
)

// Daemon is a running slipway.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	runtime *container.Incus
	appLogs *applog.Store
	proxy   *frontproxy.Keeper
	router  channels.Router // the proxy, or every cluster member's (routerOf)
	engine  *channels.Engine
	ssh     *hooks.Server

	cron       *cron.Cron
	servers    []*http.Server
	stopKeeper context.CancelFunc
	addrs      map[string]string
	wg         sync.WaitGroup
}

// The engine finds volume support by asking its runtime; make sure the Incus
// one keeps offering it.
var _ channels.VolumeRuntime = (*container.Incus)(nil)

// New opens the store, connects to Incus and recovers state; Start serves.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable for git hooks: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.Supervisor == "" {
		cfg.Supervisor = filepath.Join(filepath.Dir(cfg.Binary), container.SupervisorBinary)
	}
	if err := ownDataDir(cfg.DataDir, cfg.backupDir()); err != nil {
		return nil, fmt.Errorf("--data %s: %w", cfg.DataDir, err)
	}
	st, err := store.Open(cfg.storePath())
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: logger, store: st, addrs: map[string]string{}}
	if created, err := hooks.EnsureAdmin(ctx, st, cfg.AdminKey); err != nil {
		st.Close()
		return nil, err
	} else if created {
		logger.Info("Registered the first admin", "key", cfg.AdminKey)
	} else if n, _ := st.CountUsers(ctx); n == 0 {
		logger.Warn("No users yet: start with --admin-key FILE to register the first admin")
	}
	supervisor, err := container.InstallSupervisor(cfg.Supervisor, cfg.supervisorDir())
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("--supervisor: %w", err)
	}
	d.runtime, err = container.ConnectTo(cfg.Incus, cfg.IncusProject, supervisor, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	// On a cluster the daemon reaches other members' instances through their
	// proxies' agents; its own agent is the proxy's, so the server is unused.
	cluster, err := frontproxy.JoinCluster(d.runtime, cfg.AgentAddr, frontproxy.AgentDirIn(cfg.DataDir), logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	if d.appLogs, err = applog.Open(cfg.appLogsDir(), cfg.AppLogBytes); err != nil {
		st.Close()
		return nil, err
	}
	// The proxy runs in a process of its own, so traffic does not wait on
	// this one: find it, or start it.
	d.proxy = frontproxy.NewKeeper(cfg.Binary, frontproxy.Config{
		Addr: cfg.ProxyAddr, Dir: frontproxy.DirIn(cfg.DataDir), Project: cfg.IncusProject, Incus: cfg.Incus, AgentAddr: cfg.AgentAddr,
		Version: version.Get().String(), MaxConnsPerIP: cfg.ProxyMaxConnsPerIP,
		HTTPSAddr: cfg.HTTPSAddr, CertDir: cfg.CertDir(), TrustedProxies: cfg.TrustedProxies,
	}, cfg.StartProxy, logger)
	hello, err := d.proxy.Ensure(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	d.addrs["proxy"] = hello.Addr
	d.addrs["https"] = hello.HTTPSAddr
	d.router = routerOf(d.proxy.Client(), cluster, cfg.CertDir(), logger)
	https, err := d.httpsConfig()
	if err != nil {
		st.Close()
		return nil, err
	}
	databases, err := database.New(d.runtime, database.Config{DataDir: cfg.DataDir, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	d.engine = channels.NewEngine(channels.Config{
		ReposDir:     cfg.reposDir(),
		BaseDomain:   cfg.BaseDomain,
		MaxParallel:  cfg.MaxParallel,
		AppPort:      cfg.AppPort,
		DrainTimeout: cfg.DrainTimeout,
		HealEvery:    healEvery(cfg.HealEvery),
		KeepImages:   cfg.KeepImages,
		AppLogs:      d.appLogs,
		HTTPS:        https,
		WebHost:      cfg.WebHost,
		Databases:    databases,
		Copies:       channels.CopyConfig{Dir: cfg.BackupCopyDir, Envs: splitList(cfg.BackupCopyEnvs)},
		Backups: channels.BackupConfig{
			Dir:        cfg.backupDir(),
			KeepDaily:  cfg.BackupKeepDaily,
			KeepWeekly: cfg.BackupKeepWeekly,
			Schedule:   cfg.BackupSchedule,
			DataDir:    cfg.DataDir,
			System:     SystemLayout(),
		},
	}, st, d.runtime, d.router, logger)
	if err := d.engine.Recover(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("recover state: %w", err)
	}
	if err := d.engine.RecoverBackups(ctx); err != nil {
		logger.Warn("Could not clean up after interrupted backups", "err", err)
	}
	d.ssh = hooks.New(hooks.Config{
		Addr:                   cfg.SSHAddr,
		DataDir:                cfg.DataDir,
		ReposDir:               cfg.reposDir(),
		Binary:                 cfg.Binary,
		MaxPushBytes:           cfg.MaxPushBytes,
		WebURL:                 func() string { return d.cfg.webURL(d.addrs["web"], d.addrs["https"]) },
		DatabaseBackupSchedule: cfg.DatabaseBackupSchedule,
		ProxyAddr:              func() string { return d.addrs["proxy"] },
	}, st, d.engine, logger)
	return d, nil
}

// Start binds every listener, so the addresses are known when it returns.
func (d *Daemon) Start() error {
	if err := d.ssh.Start(); err != nil {
		return err
	}
	d.addrs["ssh"] = d.ssh.Addr()
	d.keepProxy()
	if err := d.serveHTTP("web", d.cfg.WebAddr, d.webHandler()); err != nil {
		return err
	}
	if err := d.engine.ServeWebPage(context.Background(), d.addrs["web"]); err != nil {
		return err
	}
	if d.cfg.MetricsAddr != "off" {
		// Apart from the web page: scrapers need no sign-in, and the
		// counts are not for everyone who can reach the page.
		if err := d.serveHTTP("metrics", d.cfg.MetricsAddr, d.metricsHandler()); err != nil {
			return err
		}
	}
	if err := d.startCron(); err != nil {
		return err
	}
	d.log.Info("slipway is running", "ssh", d.addrs["ssh"], "proxy", d.addrs["proxy"], "web", d.addrs["web"], "metrics", d.addrs["metrics"], "https", d.addrs["https"], "data", d.cfg.DataDir)
	return nil
}

// keepProxy starts the proxy again whenever it dies, and then puts its
// routes right: it serves from its state file, but that may be gone.
func (d *Daemon) keepProxy() {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopKeeper = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.proxy.Keep(ctx, func(ctx context.Context, hello router.Hello) {
			if err := d.engine.SyncRoutes(ctx); err != nil {
				d.log.Error("Could not give the proxy its routes again", "err", err)
				return
			}
			d.log.Info("The proxy serves again, with every route", "pid", hello.PID, "addr", hello.Addr)
		})
	}()
}

func (d *Daemon) serveHTTP(name, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for %s on %s: %w", name, addr, err)
	}
	d.addrs[name] = ln.Addr().String()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	d.servers = append(d.servers, srv)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("HTTP server stopped", "server", name, "err", err)
		}
	}()
	return nil
}

// Addr returns a bound address: "ssh", "proxy", "web" or "metrics".
func (d *Daemon) Addr(name string) string { return d.addrs[name] }

// Shutdown stops taking work, lets HTTP requests finish, cancels running
// operations (they roll back) and closes the store. The proxy keeps serving.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.stopCron()
	d.ssh.Close()
	if d.stopKeeper != nil {
		d.stopKeeper()
	}
	for _, srv := range d.servers {
		srv.Shutdown(ctx)
	}
	d.engine.Close()
	d.appLogs.Close()
	d.wg.Wait()
	return d.store.Close()
}

// webHandler is the web page with /healthz beside it. It is built in Start,
// once the SSH server is bound, so the page can say where to run `login`.
func (d *Daemon) webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/", web.New(web.Config{BaseURL: d.cfg.webURL(d.addrs["web"], d.addrs["https"]), SSHAddr: d.addrs["ssh"]}, d.store, d.engine, d.log))
	return mux
}

// healEvery turns the flag's 0 (never) into the engine's "never".
func healEvery(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// routerOf is the proxy the engine drives: this host's, and on a cluster
// every member's through its agent.
func routerOf(local *router.Client, cluster *frontproxy.Cluster, certDir string, logger *slog.Logger) channels.Router {
	if cluster == nil || len(cluster.Agents()) == 0 {
		return local
	}
	var mu sync.Mutex
	clients := map[string]*router.Client{}
	members := func() map[string]*router.Client {
		mu.Lock()
		defer mu.Unlock()
		for member, a := range cluster.Agents() {
			if clients[member] == nil {
				clients[member] = router.NewClientDial("the proxy of member "+member, a.DialControl)
			}
		}
		out := make(map[string]*router.Client, len(clients))
		for k, v := range clients {
			out[k] = v
		}
		return out
	}
	return &router.Fanout{Local: local, Members: members, CertDir: certDir, Log: logger}
}
