package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/brokercore/auth"
)

const (
	cookieName = "outpost_session"
	csrfHeader = "X-CSRF-Token"
	// DefaultSessionTTL is how long a console session lasts (Options.SessionTTL).
	DefaultSessionTTL = 12 * time.Hour
	// DefaultLoginDelay is added to every failed login (Options.LoginDelay).
	DefaultLoginDelay = time.Second
	// maxSessions bounds the sessions kept; the oldest goes first.
	maxSessions = 256
)

// session is one browser's login (or, without login, its CSRF binding).
type session struct {
	token   string
	csrf    string
	user    string // "" when no login is required
	created time.Time
	expires time.Time
}

// sessions is the store of console sessions, in memory: a restart logs
// everyone out.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]*session
}

func randToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(user string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, v := range s.m {
			if oldest == nil || v.created.Before(oldest.created) {
				oldest = v
			}
		}
		delete(s.m, oldest.token)
	}
	ss := &session{token: randToken(), csrf: randToken(), user: user, created: now, expires: now.Add(s.ttl)}
	s.m[ss.token] = ss
	return ss
}

// get returns the unexpired session of r's cookie, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[c.Value]
	if ss == nil {
		return nil
	}
	if s.now().After(ss.expires) {
		delete(s.m, ss.token)
		return nil
	}
	return ss
}

func (s *sessions) remove(token string) {
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}

func (c *Console) setCookie(w http.ResponseWriter, ss *session) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: ss.token, Path: "/",
		Expires: ss.expires, MaxAge: int(c.opts.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.opts.TLS,
	})
}

// passwords loads the password file, again whenever it changed on disk
// (so `outpost passwd` takes effect without a restart).
type passwords struct {
	path string
	mu   sync.Mutex
	mod  time.Time
	size int64
	p    *auth.Passwords
}

func (p *passwords) check(user string, password []byte) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fi, err := os.Stat(p.path)
	if err != nil {
		return false, fmt.Errorf("console password_file: %w", err)
	}
	if p.p == nil || !fi.ModTime().Equal(p.mod) || fi.Size() != p.size {
		np, err := auth.LoadPasswords(p.path)
		if err != nil {
			return false, fmt.Errorf("console password_file: %w", err)
		}
		p.p, p.mod, p.size = np, fi.ModTime(), fi.Size()
	}
	return p.p.Check(user, password), nil
}

// errForbidden is an action without a valid session and CSRF token.
var errForbidden = errors.New("forbidden")

// authorize returns the session of a request to the API. With login
// required it must be a logged-in session; without, any session (the page
// gets one from /api/session). needCSRF adds the CSRF header check that
// every state-changing request makes.
func (c *Console) authorize(r *http.Request, needCSRF bool) (*session, error) {
	ss := c.sess.get(r)
	if ss == nil {
		if !needCSRF && !c.opts.RequireLogin {
			return nil, nil // read-only request, no login needed
		}
		return nil, errForbidden
	}
	if c.opts.RequireLogin && ss.user == "" {
		return nil, errForbidden
	}
	if needCSRF && subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(ss.csrf)) != 1 {
		return nil, errForbidden
	}
	return ss, nil
}

// basicAuth lets Prometheus scrape /metrics with basic_auth when a login is
// required.
func (c *Console) basicAuth(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok || !slices.Contains(c.opts.Users, u) || c.pw == nil {
		return false
	}
	good, err := c.pw.check(u, []byte(p))
	if err != nil {
		c.log.Error("metrics login", "err", err)
	}
	return good
}

// hostAllowed guards the loopback console against DNS rebinding: a page
// from another site whose name was re-pointed at 127.0.0.1 would otherwise
// be same-origin. Without login only literal loopback addresses and
// "localhost" are accepted as Host.
func (c *Console) hostAllowed(r *http.Request) bool {
	if c.opts.RequireLogin {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopback reports whether addr (host:port) listens on loopback only: the
// console then needs no login.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
