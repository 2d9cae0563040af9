// Command slipway is the deployment daemon: `slipway serve` runs it, `slipway
// setup` prepares the host, `slipway image` re-imports the base image alone,
// `slipway hook` is called by git during a push, `slipway version` says
// which build this is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
	"github.com/slipway-dev/slipway/daemon"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
	"github.com/slipway-dev/slipway/daemon/remote"
	"github.com/slipway-dev/slipway/daemon/setup"
	"github.com/slipway-dev/slipway/daemon/version"
	"github.com/slipway-dev/slipway/hooks"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "proxy":
		os.Exit(proxyCmd(os.Args[2:]))
	case "setup":
		os.Exit(runSetup("setup", setup.Run, os.Args[2:]))
	case "image":
		os.Exit(image(os.Args[2:]))
	case "restore-system":
		os.Exit(restoreSystem(os.Args[2:]))
	case "hook":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: slipway hook pre-receive|post-receive")
			os.Exit(2)
		}
		os.Exit(hooks.RunHook(os.Args[2], os.Stdin, os.Stderr))
	case "version", "--version":
		if len(os.Args) != 2 {
			fmt.Fprintln(os.Stderr, "slipway: version takes no arguments\nusage: slipway version")
			os.Exit(2)
		}
		fmt.Println(version.Get())
	case "help", "-h", "--help":
		usage()
	case "remote":
		os.Exit(remoteCmd(os.Args[2:]))
	case "-r", "--remote":
		if len(os.Args) < 4 {
			fmt.Fprintln(os.Stderr, "usage: slipway -r NAME COMMAND [ARGS...]")
			os.Exit(2)
		}
		os.Exit(onRemote(os.Args[2], os.Args[3:]))
	default:
		if hasDefaultRemote() {
			os.Exit(onRemote("", os.Args[1:]))
		}
		fmt.Fprintf(os.Stderr, "slipway: unknown command %q (on a laptop, SSH commands need a remote first: slipway remote add NAME ssh://git@HOST:2222)\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: slipway COMMAND [flags]
  serve   run the daemon (slipway serve -h for flags); it starts the proxy if none runs
  proxy   run the front proxy apps are served on, alone (slipway proxy -h for flags)
  proxy upgrade
          hand the proxy's sockets to the slipway binary installed now: no request lost
  proxy status
          say which proxy runs, where, and how many hosts it routes
  proxy stop
          stop the proxy (slipway serve leaves it running when it exits)
  setup   make this host ready: Incus, storage pool, base image (--debian, --postgres: those images too)
  restore-system ARCHIVE --data DIR
          restore a system backup (store, keys, repositories) into a new data
          directory, before the first slipway serve on it
  image   rebuild the busybox base image and re-import it if it changed
  image build busybox|debian|postgres [flags]
          build a base image; debian makes slipway/debian for Python, Node,
          Ruby and Go apps (slipway image build debian -h for flags);
          postgres makes slipway/postgres, the image databases run on
  version the version, commit and build date of this binary (ssh ... version: the daemon's)

On a laptop:
  remote add NAME ssh://git@HOST:2222 | remote remove NAME | remote default NAME | remote list
          the slipway servers you use; the first one added is the default
  [-r NAME] COMMAND [ARGS...]
          any SSH command (status, pin, maintenance, ...) on the default remote
          or NAME, its arguments passed whole: no quoting for the remote shell`)
}

// hasDefaultRemote: commands this binary does not know go to a remote.
func hasDefaultRemote() bool {
	path, err := remote.Path()
	if err != nil {
		return false
	}
	c, err := remote.Load(path)
	return err == nil && c.Default != ""
}

// parseFlags parses a command's flags. -h lists them (exit 0); a mistake is
// one line in slipway's words and where the flags are listed (exit 2). done
// says the command ends here with code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fmt.Printf("usage: slipway %s [flags]\n", fs.Name())
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		return 0, true
	}
	fmt.Fprintf(os.Stderr, "slipway %s: %s\nusage: slipway %s [flags] (slipway %s -h lists them)\n",
		fs.Name(), hooks.FlagMessage(fs, err), fs.Name(), fs.Name())
	return 2, true
}

// envFlags registers flags whose defaults come from SLIPWAY_* variables.
type envFlags struct {
	fs  *flag.FlagSet
	err error
}

func envName(flagName string) string {
	return "SLIPWAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (e *envFlags) str(p *string, name, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		*p = v
	}
	e.fs.StringVar(p, name, *p, usage+" ($"+envName(name)+")")
}

func (e *envFlags) int(p *int, name, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		n, err := strconv.Atoi(v)
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("$%s: %q is not a number", envName(name), v)
		}
		*p = n
	}
	e.fs.IntVar(p, name, *p, usage+" ($"+envName(name)+")")
}

func (e *envFlags) bool(p *bool, name, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		b, err := strconv.ParseBool(v)
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("$%s: %q is not true or false", envName(name), v)
		}
		*p = b
	}
	e.fs.BoolVar(p, name, *p, usage+" ($"+envName(name)+")")
}

// prefixes is a --flag of comma-separated CIDR prefixes.
func (e *envFlags) prefixes(p *[]netip.Prefix, name, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		ps, err := frontproxy.ParsePrefixes(v)
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("$%s: %w", envName(name), err)
		}
		*p = ps
	}
	// The reason goes to e.err, said after parsing: flag's own message for a
	// value a Func refuses would lose it.
	e.fs.Func(name, usage+" ($"+envName(name)+")", func(v string) error {
		ps, err := frontproxy.ParsePrefixes(v)
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("--%s: %w", name, err)
		}
		*p = ps
		return nil
	})
}

func (e *envFlags) duration(p *time.Duration, name, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		d, err := time.ParseDuration(v)
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("$%s: %q is not a duration such as 2160h", envName(name), v)
		}
		*p = d
	}
	e.fs.DurationVar(p, name, *p, usage+" ($"+envName(name)+")")
}

func serve(args []string) int {
	cfg := daemon.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	ef := &envFlags{fs: fs}
	ef.str(&cfg.DataDir, "data", "data directory: store, repositories, host key")
	ef.str(&cfg.SSHAddr, "ssh-addr", "SSH address for git push and commands")
	ef.str(&cfg.WebAddr, "web-addr", "web page address (plain HTTP: keep it on loopback or behind a TLS proxy)")
	ef.str(&cfg.MetricsAddr, "metrics-addr", "Prometheus /metrics address, or off")
	ef.str(&cfg.ProxyAddr, "proxy-addr", "front HTTP proxy address apps are served on")
	ef.int(&cfg.ProxyMaxConnsPerIP, "proxy-max-conns-per-ip", "client connections the proxy keeps open from one address, or 0 for no cap")
	ef.str(&cfg.HTTPSAddr, "https-addr", `front proxy's HTTPS address, or "" for no HTTPS`)
	ef.prefixes(&cfg.TrustedProxies, "trusted-proxies", "CIDR,... of proxies in front (a CDN, a load balancer) whose X-Forwarded-For, X-Forwarded-Proto and CF-Connecting-IP are kept")
	ef.bool(&cfg.StartProxy, "start-proxy", "start the proxy process when none runs (false under a service manager that runs slipway proxy)")
	ef.str(&cfg.WebURL, "web-url", "public base URL of the web page (default http://<web-addr>)")
	ef.str(&cfg.WebHost, "web-host", "serve the web page at https://DOMAIN through the front proxy, with a certificate slipway gets")
	ef.str(&cfg.IncusProject, "incus-project", "Incus project for instances")
	incusFlags(ef, &cfg.Incus)
	ef.str(&cfg.AgentAddr, "agent-addr", `where the proxy's slipway agent listens when Incus is a cluster, or "" for none`)
	ef.str(&cfg.AdminKey, "admin-key", "public key file registered as the first admin")
	ef.str(&cfg.BaseDomain, "base-domain", "installations are served at APP.ENV.<base-domain>")
	ef.int(&cfg.MaxParallel, "max-parallel", "operations running at once")
	ef.int(&cfg.KeepImages, "keep-images", "images of earlier builds kept per installation for fast rollback")
	ef.str(&cfg.Supervisor, "supervisor", "the static slipway-supervisor binary instances run as init (default: next to slipway)")
	appLogMB := int(cfg.AppLogBytes >> 20)
	ef.int(&appLogMB, "app-log-mb", "app output kept per installation on the host, in MiB (the newest half at least)")
	ef.str(&cfg.ReportSchedule, "report-schedule", "cron schedule (UTC) of the weekly activity reports")
	ef.str(&cfg.BackupDir, "backup-dir", "backup files (default <data>/backups)")
	ef.str(&cfg.BackupSchedule, "backup-schedule", "default cron schedule (UTC) of backups of installations with volumes, or off")
	ef.str(&cfg.StoreBackupSchedule, "store-backup-schedule", "cron schedule (UTC) of the store's backup, or off")
	ef.str(&cfg.SystemBackupSchedule, "system-backup-schedule", "cron schedule (UTC) of the backup of slipway itself (store, keys, repositories), or off")
	ef.str(&cfg.BackupCopyDir, "backup-copy-dir", "a directory on other storage where verified backups are copied and checked (a NAS, an rclone mount of S3)")
	ef.str(&cfg.BackupCopyEnvs, "backup-copy-envs", "environments whose backups are copied there, comma-separated (the store's and slipway's own always are)")
	ef.str(&cfg.DatabaseBackupSchedule, "database-backup-schedule", "cron schedule (UTC) of every database's verified backup, then its purge, or off")
	ef.int(&cfg.BackupKeepDaily, "backup-keep-daily", "keep the newest backup of each of the last N days")
	ef.int(&cfg.BackupKeepWeekly, "backup-keep-weekly", "keep the newest backup of each of the last N weeks")
	ef.str(&cfg.ACME.URL, "acme-url", "ACME directory certificates come from, or off for own certificates only")
	ef.str(&cfg.ACME.Email, "acme-email", "contact the CA writes to about expiring certificates")
	ef.str(&cfg.ACME.Roots, "acme-roots", "PEM file of CAs trusted for the ACME directory's HTTPS (a private CA; default: the system's)")
	ef.str(&cfg.ACME.RenewSchedule, "renew-schedule", "cron schedule (UTC) of the look for certificates due")
	ef.duration(&cfg.ACME.RenewBefore, "renew-before", "renew a certificate this long before it expires")
	maxPushMB := int(cfg.MaxPushBytes >> 20)
	ef.int(&maxPushMB, "max-push-mb", "largest pack a push may send, in MiB")
	ef.duration(&cfg.LogRetention, "log-retention", "how long logs of deprovisioned installations are kept")
	ef.duration(&cfg.HealEvery, "heal-every", "how often instances that stopped or vanished are looked for and replaced, or 0 for never")
	logLevel := "info"
	ef.str(&logLevel, "log-level", "debug, info, warn or error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if ef.err != nil {
		fmt.Fprintf(os.Stderr, "slipway: %s\n", ef.err)
		return 2
	}
	cfg.MaxPushBytes = int64(maxPushMB) << 20
	cfg.AppLogBytes = int64(appLogMB) << 20
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "slipway: --log-level: %q is not a level\n", logLevel)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.New(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slipway: %s\n", err)
		return 1
	}
	if err := d.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "slipway: %s\n", err)
		d.Shutdown(context.Background())
		return 1
	}
	<-ctx.Done()
	logger.Info("Shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		logger.Error("Shutdown", "err", err)
		return 1
	}
	logger.Info("Stopped")
	return 0
}

// image is `slipway image [build busybox|debian|postgres]`; alone it is `build
// busybox`, what it did before there was a second image.
func image(args []string) int {
	if len(args) == 0 || args[0] != "build" {
		return runSetup("image", setup.Image, args)
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: slipway image build busybox|debian|postgres [flags]")
		return 2
	}
	switch args[1] {
	case "busybox":
		return runSetup("image build busybox", setup.Image, args[2:])
	case "debian":
		return runSetup("image build debian", setup.DebianImage, args[2:])
	case "postgres":
		return runSetup("image build postgres", setup.PostgresImage, args[2:])
	}
	fmt.Fprintf(os.Stderr, "slipway image build: no image %q (busybox, debian or postgres)\n", args[1])
	return 2
}

// runSetup runs setup.Run, setup.Image or setup.DebianImage, which share
// their flags; the Debian image's flags are there for the commands that
// build it.
func runSetup(name string, run func(context.Context, setup.Options, io.Writer) error, args []string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	opts := setup.Options{DataDir: daemon.Defaults().DataDir}
	ef := &envFlags{fs: fs}
	ef.str(&opts.DataDir, "data", "data directory (incusd's log goes here when "+name+" starts it)")
	include := ""
	switch name {
	case "setup":
		fs.BoolVar(&opts.Debian.Build, "debian", false, "also build the Debian image slipway/debian (about 2 minutes and 300 MB from the Debian mirror)")
		fs.BoolVar(&opts.Postgres.Build, "postgres", false, "also build the Postgres image slipway/postgres that databases run on")
	case "image build debian":
		fs.StringVar(&include, "include", "", "more Debian packages for the image, comma-separated (PKG,...)")
		fs.StringVar(&opts.Debian.Alias, "alias", baseimage.DebianAlias, "image alias to import it as")
		fs.BoolVar(&opts.Debian.Fresh, "fresh", false, "build again even when the cache or Incus has this recipe")
	case "image build postgres":
		fs.StringVar(&opts.Postgres.Alias, "alias", baseimage.PostgresAlias, "image alias to import it as")
		fs.BoolVar(&opts.Postgres.Fresh, "fresh", false, "build again even when the cache or Incus has this recipe")
	}
	if name != "image" && name != "image build busybox" {
		opts.Debian.CacheDir = baseimage.DefaultCacheDir
		fs.StringVar(&opts.Debian.CacheDir, "cache", opts.Debian.CacheDir, "directory keeping built Debian image tarballs")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "slipway %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	if include != "" {
		opts.Debian.Include = strings.Split(include, ",")
	}
	// One --cache for both Debian-based images: their tarballs have their own names.
	opts.Postgres.CacheDir = opts.Debian.CacheDir
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(context.Background(), opts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "slipway %s: %s\n", name, err)
		return 1
	}
	return 0
}

// incusFlags are how serve and proxy reach an incusd other than through its
// unix socket.
func incusFlags(ef *envFlags, r *container.Remote) {
	ef.str(&r.URL, "incus-url", "reach incusd at https://HOST:8443 with a client certificate instead of its unix socket (on another host, through the slipway proxy there: see README)")
	ef.str(&r.CertFile, "incus-cert", "client certificate (PEM) the incusd at --incus-url trusts")
	ef.str(&r.KeyFile, "incus-key", "key of --incus-cert")
	ef.str(&r.ServerCert, "incus-server-cert", "certificate of the incusd at --incus-url, when no system CA signs it")
}
