// Package daemon wires slipway together: store, SSH server, engine, front
// proxy and web page. It owns every long-running goroutine.
package daemon

import (
	"fmt"
	"github.com/slipway-dev/slipway/channels/applog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
	"github.com/slipway-dev/slipway/hooks"
	"github.com/slipway-dev/slipway/store"
)

// Config is the whole daemon configuration, filled from flags and SLIPWAY_*
// environment variables by main.
type Config struct {
	DataDir            string           // SQLite store, repositories, host key
	SSHAddr            string           // git push and SSH commands
	WebAddr            string           // web page
	MetricsAddr        string           // Prometheus /metrics; "off": none
	ProxyAddr          string           // the front HTTP proxy apps are served on
	ProxyMaxConnsPerIP int              // client connections the proxy keeps open from one address; 0: no cap
	HTTPSAddr          string           // the front proxy's HTTPS address; "": no HTTPS
	TrustedProxies     []netip.Prefix   // peers (a CDN, a load balancer) whose forwarding fields the proxy believes
	StartProxy         bool             // start the proxy process when none runs (false: a service manager does)
	WebURL             string           // public base URL of the web page (default http://WebAddr)
	WebHost            string           // the web page's domain, served over HTTPS through the front proxy
	IncusProject       string           // every instance lives in this Incus project
	AdminKey           string           // public key file registered as admin on first start
	BaseDomain         string           // installations default to APP.ENV.BaseDomain
	MaxParallel        int              // operations running at once
	MaxPushBytes       int64            // largest pack a push may send
	DrainTimeout       time.Duration    // in-flight requests' grace after a swap
	Incus              container.Remote // incusd's HTTPS API with a client certificate; URL "": the unix socket
	AgentAddr          string           // the proxy's slipway agent, on a cluster (see frontproxy.JoinCluster)
	HealEvery          time.Duration    // how often dead instances are looked for; 0: never
	AppPort            int              // $PORT inside instances
	KeepImages         int              // images of earlier builds kept per installation for fast rollback
	Binary             string           // this executable, for git hooks
	Supervisor         string           // the static slipway-supervisor binary every instance runs as init (default: beside Binary)
	AppLogBytes        int64            // app logs kept per installation

	ReportSchedule string           // cron spec (UTC) of the weekly activity reports
	LogRetention   time.Duration    // how long logs of deprovisioned installations are kept
	Now            func() time.Time // clock for schedules and reports; nil means time.Now

	BackupDir              string // backup files (default DataDir/backups)
	BackupSchedule         string // default cron spec (UTC) of backups of installations with volumes; "off": none
	StoreBackupSchedule    string // cron spec (UTC) of the store's own backup; "off": none
	SystemBackupSchedule   string // cron spec (UTC) of the backup of slipway itself (store, keys, repositories); "off": none
	DatabaseBackupSchedule string // cron spec (UTC) of every database's backup; "off": none
	BackupCopyDir          string // off-site copies of verified backups go here ("": none)
	BackupCopyEnvs         string // comma-separated environments whose backups are copied (the store's and the system's always)
	BackupKeepDaily        int    // keep the newest backup of each of the last N days
	BackupKeepWeekly       int    // and of each of the last M weeks

	ACME ACMEConfig // how certificates are obtained for HTTPS
}

// ACMEConfig is where slipway gets its certificates.
type ACMEConfig struct {
	URL           string        // the CA's ACME directory; "off": own certificates only
	Email         string        // the account's contact, for the CA's expiry notices
	Roots         string        // PEM file of CAs trusted for the directory's own HTTPS ("": the system's)
	RenewSchedule string        // cron spec (UTC) of the look for certificates due
	RenewBefore   time.Duration // renew this long before expiry
}

// LetsEncrypt is Let's Encrypt's production ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Defaults returns the configuration slipway runs with when nothing is set.
func Defaults() Config {
	return Config{
		DataDir:            "/var/lib/slipway",
		SSHAddr:            "127.0.0.1:2222",
		WebAddr:            "127.0.0.1:8080", // sign-in links and sessions: not on the network until it has TLS
		MetricsAddr:        "127.0.0.1:8081",
		ProxyAddr:          ":8000",
		ProxyMaxConnsPerIP: proxy.DefaultMaxConnsPerIP,
		HTTPSAddr:          ":443",
		StartProxy:         true,
		IncusProject:       "slipway",
		BaseDomain:         "localhost",
		MaxParallel:        channels.DefaultMaxParallel,
		MaxPushBytes:       hooks.DefaultMaxPushBytes,
		DrainTimeout:       channels.DefaultDrainTimeout,
		HealEvery:          channels.DefaultHealEvery,
		AgentAddr:          frontproxy.DefaultAgentAddr,
		AppPort:            channels.DefaultAppPort,
		KeepImages:         channels.DefaultKeepImages,
		AppLogBytes:        applog.DefaultLimit,

		ReportSchedule: "5 0 * * 1", // Mondays 00:05 UTC: last week is complete
		LogRetention:   90 * 24 * time.Hour,

		BackupSchedule:         "30 2 * * *",
		StoreBackupSchedule:    "15 2 * * *",
		SystemBackupSchedule:   "45 2 * * *", // after the store's and the volumes' backups
		DatabaseBackupSchedule: "0 3 * * *",
		BackupCopyEnvs:         "production",
		BackupKeepDaily:        7,
		BackupKeepWeekly:       4,

		ACME: ACMEConfig{URL: LetsEncrypt, RenewSchedule: "17 * * * *", RenewBefore: channels.DefaultRenewBefore},
	}
}

// CertDir is where the proxy reads certificate pairs (NAME.crt, NAME.key).
func (c *Config) CertDir() string { return frontproxy.CertDirIn(c.DataDir) }

// Validate names the first bad field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data: a data directory is required")
	}
	for _, a := range []struct{ flag, addr string }{{"--ssh-addr", c.SSHAddr}, {"--web-addr", c.WebAddr}, {"--proxy-addr", c.ProxyAddr}, {"--metrics-addr", c.MetricsAddr}} {
		if a.flag == "--metrics-addr" && a.addr == "off" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s: %q is not HOST:PORT", a.flag, a.addr)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPSAddr); c.HTTPSAddr != "" && err != nil {
		return fmt.Errorf("--https-addr: %q is not HOST:PORT (or \"\" for no HTTPS)", c.HTTPSAddr)
	}
	if c.IncusProject == "" || strings.ContainsAny(c.IncusProject, "/ ") {
		return fmt.Errorf("--incus-project: %q is not a valid Incus project name", c.IncusProject)
	}
	if c.BaseDomain == "" || strings.ContainsAny(c.BaseDomain, "/ :") {
		return fmt.Errorf("--base-domain: %q is not a domain", c.BaseDomain)
	}
	if c.MaxPushBytes < 1<<20 {
		return fmt.Errorf("--max-push-mb: must be at least 1")
	}
	if c.LogRetention <= 0 {
		return fmt.Errorf("--log-retention: must be more than 0")
	}
	if c.KeepImages < 0 {
		return fmt.Errorf("--keep-images: must be 0 or more")
	}
	if c.ProxyMaxConnsPerIP < 0 {
		return fmt.Errorf("--proxy-max-conns-per-ip: must be 0 (no cap) or more")
	}
	if c.MaxParallel < 1 {
		return fmt.Errorf("--max-parallel: must be at least 1")
	}
	if _, err := cron.ParseStandard(c.ReportSchedule); err != nil {
		return fmt.Errorf("--report-schedule: %q is not a cron schedule: %v", c.ReportSchedule, err)
	}
	if err := c.ACME.validate(); err != nil {
		return err
	}
	if err := c.validateWebHost(); err != nil {
		return err
	}
	if c.BackupCopyDir != "" && !filepath.IsAbs(c.BackupCopyDir) {
		return fmt.Errorf("--backup-copy-dir: %q is not an absolute path", c.BackupCopyDir)
	}
	for _, s := range []struct{ flag, spec string }{{"--backup-schedule", c.BackupSchedule}, {"--store-backup-schedule", c.StoreBackupSchedule}, {"--system-backup-schedule", c.SystemBackupSchedule}, {"--database-backup-schedule", c.DatabaseBackupSchedule}} {
		if s.spec == "" || s.spec == "off" {
			continue
		}
		if _, err := cron.ParseStandard(s.spec); err != nil {
			return fmt.Errorf("%s: %q is not a cron schedule (or off): %v", s.flag, s.spec, err)
		}
	}
	if c.BackupKeepDaily < 1 {
		return fmt.Errorf("--backup-keep-daily: must be at least 1, so the newest backup is kept")
	}
	if c.BackupKeepWeekly < 0 {
		return fmt.Errorf("--backup-keep-weekly: must be 0 or more")
	}
	if c.AppPort < 1 || c.AppPort > 65535 {
		return fmt.Errorf("app port %d is out of range", c.AppPort)
	}
	return nil
}

func (a *ACMEConfig) validate() error {
	if a.URL != "off" {
		u, err := url.Parse(a.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--acme-url: %q is not an https:// ACME directory URL (or off)", a.URL)
		}
	}
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		return fmt.Errorf("--acme-email: %q is not an email address", a.Email)
	}
	if _, err := cron.ParseStandard(a.RenewSchedule); err != nil {
		return fmt.Errorf("--renew-schedule: %q is not a cron schedule: %v", a.RenewSchedule, err)
	}
	if a.RenewBefore <= 0 {
		return fmt.Errorf("--renew-before: must be more than 0, such as 720h")
	}
	return nil
}

// certsDirName holds the certificates the proxy serves and the ACME account.
const certsDirName = "certs"

// validateWebHost checks that the web page can be served at --web-host:
// through the HTTPS listener, reaching the web listener on loopback.
func (c *Config) validateWebHost() error {
	if c.WebHost == "" {
		return nil
	}
	host, err := channels.CheckDomain(c.WebHost)
	if err != nil {
		return fmt.Errorf("--web-host: %v", err)
	}
	c.WebHost = host
	if c.HTTPSAddr == "" {
		return fmt.Errorf("--web-host needs HTTPS: give --https-addr too")
	}
	ip, _, _ := net.SplitHostPort(c.WebAddr)
	if a, err := netip.ParseAddr(ip); ip != "" && (err != nil || !a.IsLoopback() && !a.IsUnspecified()) {
		return fmt.Errorf("--web-host: the proxy reaches the web page on loopback; --web-addr %s is not", c.WebAddr)
	}
	return nil
}

func (c *Config) certsDir() string { return filepath.Join(c.DataDir, certsDirName) }

// webURL is the base URL sign-in links point at: --web-url, or the address
// the web page is bound to (which knows the port when --web-addr asked for 0).
func (c *Config) webURL(bound, boundHTTPS string) string {
	if c.WebURL != "" {
		return strings.TrimSuffix(c.WebURL, "/")
	}
	if c.WebHost != "" {
		_, port, _ := net.SplitHostPort(boundHTTPS)
		if port == "" || port == "443" {
			return "https://" + c.WebHost
		}
		return "https://" + net.JoinHostPort(c.WebHost, port)
	}
	addr := c.WebAddr
	if bound != "" {
		addr = bound
	}
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (c *Config) storePath() string { return filepath.Join(c.DataDir, SystemLayout().Store) }
func (c *Config) reposDir() string  { return filepath.Join(c.DataDir, SystemLayout().Repos) }

// SystemLayout is what a system backup archives of the data directory and
// restore-system puts back: the store, the keys slipway keeps (the store's
// sealing key beside it, the SSH host key, the certificates with their keys
// and the ACME account key) and the repositories. The rest is
// made again at start (git hooks, supervisor, the proxy's state) or is not
// slipway's to restore (app logs, backup files).
func SystemLayout() sysarchive.Layout {
	return sysarchive.Layout{Store: "slipway.db", Repos: "repos", Keys: []string{store.KeyFileName, hooks.HostKeyFile, certsDirName + "/"}}
}
func (c *Config) appLogsDir() string { return filepath.Join(c.DataDir, "applogs") }

// supervisorDir is the directory instances mount the supervisor from; it
// must be 0755 inside the 0700 data directory (see container.InstallSupervisor).
func (c *Config) supervisorDir() string { return frontproxy.SupervisorDirIn(c.DataDir) }

func (c *Config) backupDir() string {
	if c.BackupDir != "" {
		return c.BackupDir
	}
	return filepath.Join(c.DataDir, "backups")
}

// splitList reads a comma-separated list, blanks dropped.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
