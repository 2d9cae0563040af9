package web

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

const sessionCookie = "slipway_session"

// session is a signed-in browser.
type session struct {
	id string
	store.WebSession
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, sess *session)

// signedIn runs h for a signed-in browser and tells anyone else how to sign in.
func (s *server) signedIn(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			s.internal(w, r, nil, "read session", err)
			return
		}
		if sess == nil {
			s.signInPage(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, sess)
	}
}

// form is signedIn for POSTs: the form must carry the session's CSRF token,
// or nothing happens.
func (s *server) form(h sessionHandler) http.HandlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request, sess *session) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		given := r.PostFormValue("csrf")
		if given == "" || subtle.ConstantTimeCompare([]byte(given), []byte(sess.CSRFToken)) != 1 {
			s.message(w, sess, http.StatusForbidden, "Form refused", "Missing or wrong form token; reload the page and try again.")
			return
		}
		h(w, r, sess)
	})
}

// session returns the browser's live session, or nil when it has none.
func (s *server) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	ws, err := s.store.WebSessionByID(r.Context(), c.Value)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{id: c.Value, WebSession: ws}, nil
}

// login spends a one-time sign-in link and opens a session.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	user, keyID, err := s.store.UseLoginToken(r.Context(), r.PathValue("token"))
	if errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrNotFound) {
		s.render(w, http.StatusForbidden, "signin", signInData{
			base:    base{Title: "Sign-in link used up"},
			UsedUp:  true,
			Command: s.sshCommand(r, "login"),
		})
		return
	}
	if err != nil {
		s.internal(w, r, nil, "use sign-in link", err)
		return
	}
	// A browser signing in again leaves no older session of its own behind.
	if old, err := s.session(r); err == nil && old != nil {
		s.store.DeleteWebSession(r.Context(), old.id)
	}
	id, ws, err := s.store.CreateWebSession(r.Context(), user.ID, keyID, s.cfg.SessionTTL)
	if err != nil {
		s.internal(w, r, nil, "open session", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", Expires: ws.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secure || r.TLS != nil,
	})
	s.log.Info("Signed in on the web page", "user", user.Name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := s.store.DeleteWebSession(r.Context(), sess.id); err != nil {
		s.internal(w, r, sess, "close session", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secure || r.TLS != nil,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signInPage answers a browser without a session.
func (s *server) signInPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, http.StatusUnauthorized, "signin", signInData{
		base:    base{Title: "Sign in"},
		Command: s.sshCommand(r, "login"),
	})
}

// sshCommand is the SSH command line that runs a slipway command. When the
// SSH server listens on every address, the host the browser used is the best
// guess at one that reaches it.
func (s *server) sshCommand(r *http.Request, command string) string {
	host, port, err := net.SplitHostPort(s.cfg.SSHAddr)
	if err != nil {
		return "ssh -p PORT git@HOST " + command
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "HOST"
		if u, err := url.Parse("http://" + r.Host); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		} else if u, err := url.Parse(s.cfg.BaseURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "22" {
		return "ssh git@" + host + " " + command
	}
	return "ssh -p " + port + " git@" + host + " " + command
}
