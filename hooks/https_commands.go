package hooks

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

func init() {
	register([]command{
		{"domains list APP/ENV [--json]", "the names the installation answers on, its own host first, with HTTPS and certificates", onInstallation(channels.ActionView), (*Server).cmdDomainsList},
		{"domains add APP/ENV DOMAIN", "answer on DOMAIN too (point its DNS at this host); with HTTPS on, get its certificate", onInstallation(channels.ActionDeploy), (*Server).cmdDomainsAdd},
		{"domains remove APP/ENV DOMAIN", "stop answering on DOMAIN and drop its certificate", onInstallation(channels.ActionDeploy), (*Server).cmdDomainsRemove},
		{"https APP/ENV on|off|redirect [--hsts SECONDS|off]", "serve HTTPS with certificates slipway gets (redirect: HTTP answers 308 to HTTPS); --hsts sends Strict-Transport-Security", onInstallation(channels.ActionDeploy), (*Server).cmdHTTPS},
		{"certs list [APP/ENV] [--json]", "the certificates: domain, issuer, expiry, where they come from, the last failure", onInstallation(channels.ActionView), (*Server).cmdCertsList},
		{"certs set APP/ENV DOMAIN", "serve your own certificate for DOMAIN: the PEM chain and key on stdin (the key is never shown again)", onInstallation(channels.ActionDeploy), (*Server).cmdCertsSet},
		{"certs renew APP/ENV [--force]", "get now the certificates that are missing or due, past any back-off; --force renews every one slipway got", onInstallation(channels.ActionDeploy), (*Server).cmdCertsRenew},
	}...)
}

// nameView is the --json shape of one name of an installation.
type nameView struct {
	Installation string     `json:"installation"`
	Domain       string     `json:"domain"`
	Primary      bool       `json:"primary"` // the installation's own host
	HTTPS        string     `json:"https"`
	HSTS         int        `json:"hsts"`
	Source       string     `json:"source"` // acme, own, or "" with no certificate
	Issuer       string     `json:"issuer"`
	NotAfter     *time.Time `json:"not_after"`
	LastError    string     `json:"last_error"`
	NextAttempt  *time.Time `json:"next_attempt"`
}

func (s *Server) nameViews(c *call, inst store.Installation) ([]nameView, error) {
	names, err := s.engine.NameStatuses(c.ctx, inst)
	if err != nil {
		return nil, err
	}
	views := make([]nameView, 0, len(names))
	for _, n := range names {
		v := nameView{Installation: inst.Resource(), Domain: n.Domain, Primary: n.Primary, HTTPS: inst.HTTPS, HSTS: inst.HSTS,
			Source: n.Source, LastError: n.LastError}
		if n.Certificate != nil {
			v.Issuer, v.NotAfter = n.Certificate.Issuer, &n.Certificate.NotAfter
		}
		if !n.NextAttempt.IsZero() {
			v.NextAttempt = &n.NextAttempt
		}
		views = append(views, v)
	}
	return views, nil
}

func (s *Server) cmdDomainsList(c *call, args []string) error {
	pos, asJSON, err := jsonFlagOnly("domains list", args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("domains list takes APP/ENV")
	}
	inst, err := s.installationArg(c, pos[0])
	if err != nil {
		return err
	}
	views, err := s.nameViews(c, inst)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c.out, views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tHTTPS\tCERTIFICATE")
	for _, v := range views {
		domain := v.Domain
		if v.Primary {
			domain += " (own host)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", domain, v.HTTPS, certLine(v))
	}
	return tw.Flush()
}

// certLine says where a name's certificate stands, in a few words.
func certLine(v nameView) string {
	line := "none"
	if v.NotAfter != nil {
		line = fmt.Sprintf("%s, %s, until %s", v.Source, v.Issuer, v.NotAfter.UTC().Format(time.DateOnly))
	}
	if v.LastError != "" {
		line += "; last try failed: " + v.LastError
		if v.NextAttempt != nil {
			line += " (next after " + v.NextAttempt.UTC().Format(time.RFC3339) + ")"
		}
	}
	return line
}

// installationArg reads the APP/ENV argument the gate has checked.
func (s *Server) installationArg(c *call, arg string) (store.Installation, error) {
	app, env, err := channels.ParseResource(arg)
	if err != nil {
		return store.Installation{}, err
	}
	inst, err := s.store.InstallationByName(c.ctx, app, env)
	if err != nil {
		return inst, fmt.Errorf("unknown installation %s/%s", app, env)
	}
	return inst, nil
}

func (s *Server) cmdDomainsAdd(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("domains add takes APP/ENV and a DOMAIN")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	op, err := s.engine.AddDomain(c.ctx, app, env, args[1], c.user.Name)
	if err != nil {
		return err
	}
	if err := s.followOperation(c.ctx, c.out, op); err != nil {
		return err
	}
	return s.renewIfDue(c, app, env)
}

// renewIfDue starts and follows a renew operation when APP/ENV serves HTTPS
// and a name of it has no certificate yet.
func (s *Server) renewIfDue(c *call, app, env string) error {
	inst, err := s.store.InstallationByName(c.ctx, app, env)
	if err != nil || inst.HTTPS == store.HTTPSOff {
		return err
	}
	if !s.engine.GetsCertificates() {
		fmt.Fprintf(c.out, "slipway gets no certificates here (--acme-url off): give each name one with certs set %s DOMAIN\n", inst.Resource())
		return nil
	}
	op, err := s.engine.Renew(c.ctx, app, env, c.user.Name, false)
	if errors.Is(err, channels.ErrNothingDue) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

func (s *Server) cmdDomainsRemove(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("domains remove takes APP/ENV and a DOMAIN")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	return s.follow(c)(s.engine.RemoveDomain(c.ctx, app, env, args[1], c.user.Name))
}

func (s *Server) cmdHTTPS(c *call, args []string) error {
	fs := flag.NewFlagSet("https", flag.ContinueOnError)
	hstsFlag := fs.String("hsts", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("https takes APP/ENV and on, off or redirect")
	}
	if err := channels.CheckHTTPSMode(pos[1]); err != nil {
		return usageError(err.Error())
	}
	hsts, err := parseHSTS(fs, *hstsFlag)
	if err != nil {
		return err
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	op, err := s.engine.SetHTTPS(c.ctx, app, env, pos[1], hsts, c.user.Name)
	if err != nil {
		return err
	}
	if err := s.followOperation(c.ctx, c.out, op); err != nil {
		return err
	}
	return s.renewIfDue(c, app, env)
}

// maxHSTS is two years, the longest browsers' preload lists ask for.
const maxHSTS = 2 * 365 * 24 * 3600

// parseHSTS reads --hsts: seconds, or off (0); -1 when it was not given.
func parseHSTS(fs *flag.FlagSet, v string) (int, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "hsts" })
	switch {
	case !given:
		return -1, nil
	case v == "off":
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxHSTS {
		return 0, usageError(fmt.Sprintf("--hsts %q: give a max-age in seconds (31536000 is a year, at most %d) or off", v, maxHSTS))
	}
	return n, nil
}

func (s *Server) cmdCertsList(c *call, args []string) error {
	pos, asJSON, err := jsonFlagOnly("certs list", args)
	if err != nil {
		return err
	}
	insts, err := s.installationsNamed(c, pos, "certs list")
	if err != nil {
		return err
	}
	views := []nameView{}
	for _, inst := range insts {
		vs, err := s.nameViews(c, inst)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.NotAfter != nil || v.LastError != "" {
				views = append(views, v)
			}
		}
	}
	if asJSON {
		return writeJSON(c.out, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.out, "No certificates yet: https APP/ENV on gets them, certs set APP/ENV DOMAIN gives one")
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tINSTALLATION\tCERTIFICATE")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Domain, v.Installation, certLine(v))
	}
	return tw.Flush()
}

// maxCertInput bounds a PEM chain and key on stdin.
const maxCertInput = 64 << 10

func (s *Server) cmdCertsSet(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("certs set takes APP/ENV and a DOMAIN, and the PEM chain and key on stdin")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	input, err := io.ReadAll(io.LimitReader(c.sess, maxCertInput+1))
	if err != nil {
		return err
	}
	if len(input) > maxCertInput {
		return fmt.Errorf("stdin holds more than %d KiB: give the certificate chain and its key only", maxCertInput>>10)
	}
	chain, key, err := splitPEM(input)
	if err != nil {
		return err
	}
	return s.follow(c)(s.engine.SetOwnCertificate(c.ctx, app, env, args[1], chain, key, c.user.Name))
}

func (s *Server) cmdCertsRenew(c *call, args []string) error {
	fs := flag.NewFlagSet("certs renew", flag.ContinueOnError)
	force := fs.Bool("force", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	app, env, err := oneResource(pos, "certs renew")
	if err != nil {
		return err
	}
	op, err := s.engine.Renew(c.ctx, app, env, c.user.Name, *force)
	if errors.Is(err, channels.ErrNothingDue) {
		fmt.Fprintf(c.out, "Every certificate of %s/%s is current: none is due for renewal\n", app, env)
		return nil
	}
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}
