// Package web is slipway's web page: the installations a user may see, their
// commit history with buttons to pin a commit or track a branch, their
// backups, the operations with their logs, live, and the activity and weekly
// reports of each environment. Pages are rendered on the server; the only
// script streams an operation's log. People sign in with a one-time link from
// `ssh ... login`, so the web page has no passwords of its own.
package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// Config is the web page's part of the daemon configuration.
type Config struct {
	BaseURL    string        // public base URL; https makes the session cookie Secure
	SessionTTL time.Duration // how long a sign-in lasts (default 24 hours)
	SSHAddr    string        // the SSH server's HOST:PORT, for the "how to sign in" line
}

// DefaultSessionTTL is how long a sign-in lasts when Config.SessionTTL is 0.
const DefaultSessionTTL = 24 * time.Hour

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// server holds the web page's dependencies; its methods are the handlers.
type server struct {
	cfg    Config
	store  *store.Store
	engine *channels.Engine
	log    *slog.Logger
	pages  pages
	secure bool // the session cookie is only sent over https
}

// New returns the web page's handler. It reads through st and asks engine for
// every change and every access decision.
func New(cfg Config, st *store.Store, engine *channels.Engine, logger *slog.Logger) http.Handler {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{
		cfg: cfg, store: st, engine: engine, log: logger,
		pages:  parsePages(),
		secure: strings.HasPrefix(strings.ToLower(cfg.BaseURL), "https://"),
	}
	static, _ := fs.Sub(staticFiles, "static")

	mux := http.NewServeMux()
	mux.Handle("GET /static/", withCache(http.StripPrefix("/static/", filesOnly(http.FileServerFS(static)))))
	mux.HandleFunc("GET /login/{token}", s.login)
	mux.HandleFunc("GET /{$}", s.signedIn(s.index))
	mux.HandleFunc("GET /installations/{app}/{env}", s.signedIn(s.installation))
	mux.HandleFunc("POST /installations/{app}/{env}/pin", s.form(s.pin))
	mux.HandleFunc("POST /installations/{app}/{env}/track", s.form(s.track))
	mux.HandleFunc("GET /installations/{app}/{env}/backups", s.signedIn(s.backups))
	mux.HandleFunc("GET /installations/{app}/{env}/applogs/events", s.signedIn(s.appLogEvents))
	mux.HandleFunc("GET /activity", s.signedIn(s.activity))
	mux.HandleFunc("GET /environments/{env}/reports", s.signedIn(s.reports))
	mux.HandleFunc("GET /environments/{env}/reports/{file}", s.signedIn(s.reportCSV))
	mux.HandleFunc("GET /operations/{id}", s.signedIn(s.operation))
	mux.HandleFunc("GET /operations/{id}/events", s.signedIn(s.events))
	mux.HandleFunc("POST /operations/{id}/cancel", s.form(s.cancel))
	mux.HandleFunc("POST /logout", s.form(s.logout))
	mux.HandleFunc("/", s.signedIn(func(w http.ResponseWriter, r *http.Request, sess *session) {
		s.message(w, sess, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	}))
	return withSecurityHeaders(mux)
}

// withSecurityHeaders forbids framing, sniffing and any script or style not
// served by slipway itself.
func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func withCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// filesOnly serves the files of a file server and 404 for its directories,
// which it would otherwise list.
func filesOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
