// Package brokercore is Outpost's MQTT broker: MQTT 3.1, 3.1.1 and 5.0
// clients over the listeners of package listener, sessions with QoS 0/1/2
// in both directions, in-flight windows, retained messages, wills, $SYS,
// Mosquitto-compatible authentication and ACLs, and persistence of sessions
// and retained messages in a msg.Store.
//
// Other parts see it only through package msg: *Broker implements
// msg.Publisher, msg.Subscriber and msg.Sessions, and takes msg.Tap
// implementations (AddTap) that see every accepted message before the
// publisher is acknowledged (DESIGN.md, "the one invariant").
//
// It imports packet, topic, msg, auth, listener and the standard library;
// nothing outside brokercore. Only hub (and tests) may import it:
// snbridge, adapters and storeforward get the msg interfaces.
//
// Concurrency: each network connection has one read goroutine and, while
// it has something to write, one write goroutine; Shutdown waits for both. No goroutine is started per
// message. The lock order is written down in LOCKS.md.
package brokercore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/auth"
	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// Authenticator checks a username and password (auth.Passwords implements it).
type Authenticator interface {
	Check(username string, password []byte) bool
}

// Access is the right an Authorizer is asked about (auth.Read, auth.Write).
type Access = auth.Access

// Access rights.
const (
	AccessRead  = auth.Read
	AccessWrite = auth.Write
)

// Authorizer is an ACL; *auth.ACL implements it.
type Authorizer interface {
	// Allow reports whether the client may read (receive) or write
	// (publish) topic. username "" is an anonymous client.
	Allow(clientID, username, topic string, access Access) bool
	// CanSubscribe reports whether anything under filter may be read.
	CanSubscribe(clientID, username, filter string) bool
}

var (
	_ Authenticator = (*auth.Passwords)(nil)
	_ Authorizer    = (*auth.ACL)(nil)
)

// Options are what the hub hands the broker besides its Config.
type Options struct {
	Logger  *slog.Logger     // nil: discard
	Store   msg.Store        // nil: sessions and retained messages in memory only
	Version string           // for $SYS/broker/version
	Now     func() time.Time // nil: time.Now
	// Authenticator checks passwords. nil: the Config.PasswordFile is
	// loaded (and reloaded by Reload); without one a client giving a
	// username is treated as anonymous.
	Authenticator Authenticator
	// Authorizer is the ACL. nil: Config.ACLFile is loaded (and reloaded
	// by Reload); without one everything is allowed.
	Authorizer Authorizer
	// NoIdlePark keeps a blocked reader goroutine on every connection
	// instead of parking idle plain-TCP connections with the poller
	// (park.go), for comparison benchmarks and debugging.
	NoIdlePark bool
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("brokercore: server closed")

// Broker is the MQTT broker. Build it with New, then Start (or Serve).
type Broker struct {
	cfg   Config
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	store msg.Store
	start time.Time

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the broker starts

	// mu guards the fields below it.
	mu        sync.Mutex
	sessions  map[string]*session
	conns     map[*conn]struct{}
	listeners []net.Listener
	// tlsListeners are the configured TLS listeners, for Reload.
	tlsListeners []net.Listener
	closed       bool
	started      bool

	// storeMu orders every state change that writes to the store with its
	// Commit call, so the store applies them in the order they happened.
	storeMu sync.Mutex

	subMu     sync.RWMutex
	subs      topic.Trie[*session, subRef]
	matchPool sync.Pool // *[]subRef scratch for route

	retained retainedStore

	tapMu sync.RWMutex
	taps  []msg.Tap

	authMu sync.RWMutex
	authn  Authenticator
	authz  Authorizer

	limitLog limitLogger

	// fullGates counts connections whose flow gate is closed (flow.go);
	// in-process publishers look for a gate only when it is not zero.
	fullGates counter

	stats   Stats
	nextUID counter
	// poller holds idle connections without a goroutine (park.go); nil:
	// every connection keeps its reader (not Linux, or Options.NoIdlePark).
	poller *poller
	// writers and resumers run connections with no goroutine of their
	// own: their writes, and their reads once woken (pool.go).
	writers, resumers *connPool
	// starter runs new connections until they park (starter.go).
	starter *starter
	// crashed (tests only, see crash) stops every store write, as kill -9 would.
	crashed atomic.Bool
}

var (
	_ msg.Publisher  = (*Broker)(nil)
	_ msg.Subscriber = (*Broker)(nil)
	_ msg.Sessions   = (*Broker)(nil)
)

// New builds a broker from cfg. It opens nothing; Start does.
func New(cfg Config, opts Options) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:      cfg,
		opts:     opts,
		log:      log.With("component", "broker"),
		now:      now,
		store:    opts.Store,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[string]*session),
		conns:    make(map[*conn]struct{}),
		authn:    opts.Authenticator,
		authz:    opts.Authorizer,
	}
	b.start = now()
	b.retained.init()
	b.limitLog.b = b
	b.writers = newConnPool(b, (*conn).writeLoop)
	b.resumers = newConnPool(b, (*conn).resume)
	b.starter = newStarter(b)
	return b, nil
}

// Start loads persisted sessions and retained messages, loads the password
// file and ACL (Options.LoadAuth), opens every configured listener, starts
// $SYS and returns once listening.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.started || b.closed {
		b.mu.Unlock()
		return errors.New("start broker: already started or shut down")
	}
	b.started = true
	b.mu.Unlock()
	if err := b.Reload(); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	if err := b.load(); err != nil {
		return err
	}
	if !b.opts.NoIdlePark {
		if p := newPoller(b); p != nil {
			b.poller = p
			b.wg.Go(p.run) // ends when closeLocked closes it
		}
	}
	if b.cfg.AllowAnonymous == nil && !b.allLoopback() {
		b.log.Info("anonymous clients refused: a listener is not on loopback and allow_anonymous is not set")
	}
	var ls []net.Listener
	for _, lc := range b.cfg.Listeners {
		l, err := listener.Listen(ctx, lc, b.log)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("start broker: %w", err)
		}
		ls = append(ls, l)
	}
	for i, l := range ls {
		b.log.Info("listening", "address", l.Addr().String())
		if !b.trackListener(l) {
			return ErrServerClosed
		}
		lc := b.cfg.Listeners[i]
		useID := lc.TLS != nil && lc.TLS.UseIdentityAsUsername
		if lc.TLS != nil {
			b.mu.Lock()
			b.tlsListeners = append(b.tlsListeners, l)
			b.mu.Unlock()
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			_ = b.serve(l, useID)
		}()
	}
	b.startSys()
	b.startExpiry()
	return nil
}

// Addrs returns the addresses of every listener serving, configured or
// added with Serve.
func (b *Broker) Addrs() []net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	var as []net.Addr
	for _, l := range b.listeners {
		as = append(as, l.Addr())
	}
	return as
}

// Serve accepts connections on l (an extra listener, or a test's) until
// Shutdown; it always returns a non-nil error, ErrServerClosed after
// Shutdown. Call Start first: it loads the persisted state and starts
// $SYS and the session sweeper. Temporary accept errors
// back off from 5ms to 1s, as net/http.
func (b *Broker) Serve(l net.Listener) error {
	if !b.trackListener(l) {
		return ErrServerClosed
	}
	return b.serve(l, false)
}

func (b *Broker) trackListener(l net.Listener) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		l.Close()
		return false
	}
	b.listeners = append(b.listeners, l)
	return true
}

// serve accepts on l; useID takes the username from the client
// certificate's CN (tls.use_identity_as_username).
func (b *Broker) serve(l net.Listener, useID bool) error {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if b.ctx.Err() != nil {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				b.log.Error("accept failed; retrying", "listener", l.Addr().String(), "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-b.ctx.Done():
					return ErrServerClosed
				}
				continue
			}
			b.log.Error("accept failed; listener stopped", "listener", l.Addr().String(), "err", err)
			return fmt.Errorf("serve %s: %w", l.Addr(), err)
		}
		delay = 0
		if !b.serveConn(nc, useID) {
			nc.Close()
		}
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// serveConn starts the goroutines of one network connection; false if the
// broker is closing.
func (b *Broker) serveConn(nc net.Conn, useID bool) bool {
	c := newConn(b, nc)
	c.useIdentity = useID
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1) // the writer is started when there is something to write
	b.mu.Unlock()
	b.starter.start(c)
	return true
}

// connDone is the end of connection c's last reader.
func (b *Broker) connDone(c *conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	b.wg.Done()
}

// Shutdown stops accepting, disconnects every client (v5 clients get
// DISCONNECT 0x8B; wills are sent per the spec: a server shutting down is
// not a clean DISCONNECT, so wills of connected clients are published),
// flushes session state to the store and waits for every goroutine, or
// until ctx is done.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	conns := b.closeLocked()
	for _, c := range conns {
		c.shutdown()
	}
	b.limitLog.flush(b.now(), true)
	// In-process sessions keep their state; delayed wills still pending
	// are published now [MQTT-3.1.3-9: the will is sent when the session ends].
	b.flushDelayedWills()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		b.log.Info("broker stopped")
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.closeNet()
		}
		return fmt.Errorf("shutdown broker: %w", ctx.Err())
	}
}

// Reload re-reads the password file and ACL named in Config (those
// given in Options stay). On error the old ones stay in force and the
// error is returned, naming the file and line.
func (b *Broker) Reload() error {
	var an Authenticator
	var az Authorizer
	if b.cfg.PasswordFile != "" && b.opts.Authenticator == nil {
		p, err := auth.LoadPasswords(b.cfg.PasswordFile)
		if err != nil {
			b.log.Error("reload failed; keeping the old password file and ACL", "err", err)
			return fmt.Errorf("reload broker password file: %w", err)
		}
		an = p
	}
	if b.cfg.ACLFile != "" && b.opts.Authorizer == nil {
		a, err := auth.LoadACL(b.cfg.ACLFile)
		if err != nil {
			b.log.Error("reload failed; keeping the old password file and ACL", "err", err)
			return fmt.Errorf("reload broker acl file: %w", err)
		}
		az = a
	}
	b.authMu.Lock()
	if an != nil {
		b.authn = an
	}
	if az != nil {
		b.authz = az
	}
	b.authMu.Unlock()
	if an != nil || az != nil {
		b.log.Info("password file and ACL loaded", "password_file", b.cfg.PasswordFile, "acl_file", b.cfg.ACLFile)
	}
	// TLS certificates: each listener keeps its old ones on error.
	b.mu.Lock()
	ls := append([]net.Listener(nil), b.tlsListeners...)
	b.mu.Unlock()
	var errs []error
	for _, l := range ls {
		r, ok := l.(listener.Reloader)
		if !ok {
			continue
		}
		if err := r.Reload(); err != nil {
			b.log.Error("reload TLS certificates failed; keeping the old ones", "listener", l.Addr().String(), "err", err)
			errs = append(errs, err)
			continue
		}
		b.log.Info("reloaded TLS certificates", "listener", l.Addr().String())
	}
	return errors.Join(errs...)
}

// AddTap registers a tap; every message accepted afterwards is offered to it.
func (b *Broker) AddTap(t msg.Tap) {
	b.tapMu.Lock()
	b.taps = append(b.taps, t)
	b.tapMu.Unlock()
}

// MayPublish reports whether the ACL lets username, as client clientID,
// publish to topic (true with no ACL): for in-process front ends that act
// for a user who logged in to them (the web console).
func (b *Broker) MayPublish(clientID, username, topic string) bool {
	_, az := b.auth()
	return az == nil || az.Allow(clientID, username, topic, AccessWrite)
}

func (b *Broker) auth() (Authenticator, Authorizer) {
	b.authMu.RLock()
	defer b.authMu.RUnlock()
	return b.authn, b.authz
}

func (b *Broker) allowAnonymous() bool {
	if b.cfg.AllowAnonymous != nil {
		return *b.cfg.AllowAnonymous
	}
	return b.allLoopback()
}

// allLoopback reports whether every listener binds a loopback address
// (Mosquitto 2.0's rule for allowing anonymous clients by default).
func (b *Broker) allLoopback() bool {
	for _, lc := range b.cfg.Listeners {
		host, _, err := net.SplitHostPort(lc.Address)
		if err != nil {
			return false
		}
		if host == "localhost" {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

func (b *Broker) newUID() uint64 { return uint64(b.nextUID.Add(1)) }

// limitLogger logs refusals once per cause with counts instead of once per
// client: at most one line per cause every 10 seconds; refusals counted
// after a line come out with the next refusal's line once the 10 seconds
// have passed, or, if refusals stop, from the sweeper a minute after the
// last line, and at the latest at Shutdown.
type limitLogger struct {
	b     *Broker
	mu    sync.Mutex
	cause map[string]*limitCause
}

type limitCause struct {
	last time.Time
	n    int   // refusals not logged yet
	args []any // attributes of the latest refusal
}

const (
	limitLogInterval = 10 * time.Second
	limitLogIdle     = time.Minute // pending counts are logged this long after the last line
)

func (l *limitLogger) refuse(cause string, args ...any) {
	l.mu.Lock()
	if l.cause == nil {
		l.cause = make(map[string]*limitCause)
	}
	c := l.cause[cause]
	if c == nil {
		c = &limitCause{}
		l.cause[cause] = c
	}
	c.n++
	c.args = args
	now := l.b.now()
	if !c.last.IsZero() && now.Sub(c.last) < limitLogInterval {
		l.mu.Unlock()
		return
	}
	n := c.n
	c.n, c.last = 0, now
	l.mu.Unlock()
	l.log(cause, args, n)
}

// flush logs the pending counts: those due (limitLogIdle since the
// cause's last line), or all of them with force.
func (l *limitLogger) flush(now time.Time, force bool) {
	type line struct {
		cause string
		args  []any
		n     int
	}
	var out []line
	l.mu.Lock()
	for cause, c := range l.cause {
		if c.n > 0 && (force || now.Sub(c.last) >= limitLogIdle) {
			out = append(out, line{cause, c.args, c.n})
			c.n, c.last = 0, now
		}
	}
	l.mu.Unlock()
	for _, x := range out {
		l.log(x.cause, x.args, x.n)
	}
}

func (l *limitLogger) log(cause string, args []any, n int) {
	l.b.log.Warn("connection refused: "+cause, append(append([]any(nil), args...), "refused_since_last_log", n)...)
}

// counter is an atomic 64-bit counter, aligned on 32-bit platforms.
type counter = atomic.Int64

// crash stops the broker as kill -9 would, for tests of recovery: from
// now on nothing more is written to the store (no wills, no session
// cleanup), then every connection and listener is closed.
func (b *Broker) crash() {
	b.crashed.Store(true)
	b.mu.Lock()
	for _, c := range b.closeLocked() {
		c.closeNet()
	}
	b.wg.Wait()
}

// closeLocked marks the broker closed, stops its listeners and goroutines'
// context, and returns the connections to end. It is called with b.mu held
// and releases it.
func (b *Broker) closeLocked() []*conn {
	b.closed = true
	ls := b.listeners
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	b.cancel()
	for _, l := range ls {
		l.Close()
	}
	if b.poller != nil {
		b.poller.close() // parked connections get their readers back to finish
	}
	return conns
}
