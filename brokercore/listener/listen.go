package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Reloader is implemented by every listener Listen returns. The hub calls
// it on SIGHUP to re-read TLS certificates:
//
//	if r, ok := l.(listener.Reloader); ok {
//		if err := r.Reload(); err != nil { log the error; the old certificates stay }
//	}
type Reloader interface {
	Reload() error
}

var (
	_ net.Listener = (*Listener)(nil)
	_ Reloader     = (*Listener)(nil)
)

const (
	// defaultHandshakeTimeout bounds the TLS handshake and the WebSocket
	// upgrade request, as the broker's default connect_timeout.
	defaultHandshakeTimeout = 10 * time.Second
	// defaultLogInterval is how often repeated refusals are summed up.
	defaultLogInterval = time.Minute
)

// options are knobs for tests.
type options struct {
	handshakeTimeout time.Duration
	logInterval      time.Duration
	now              func() time.Time
}

// Listener is a broker listener: plain TCP, TLS, WebSocket or WebSocket
// over TLS, with an optional connection rate limit. Accept returns
// connections ready for MQTT: over TLS the handshake is already done
// (the net.Conn is a *tls.Conn; use PeerIdentity for the client
// certificate's CN); over WebSocket it is a stream of the binary frames'
// payloads. Mix-ups (TLS to a plain port, plain MQTT to a TLS port, an
// untrusted or expired certificate, a missing client certificate, a
// WebSocket without the mqtt subprotocol) are logged with the client's
// address, the listener and the likely cause, and never reach the broker.
type Listener struct {
	cfg              Config
	log              *slog.Logger
	addr             string // the bound address, for log lines
	tcp              net.Listener
	certs            *certHolder // nil without TLS
	tlsConfig        *tls.Config
	limiter          *rateLimiter // nil without connect_rate
	refusals         *refusalLog
	handshakeTimeout time.Duration
	logInterval      time.Duration

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	out    chan net.Conn // Accept's source, unless inline
	inline bool          // plain TCP: Accept takes the next connection itself
	ws     *http.Server  // nil unless WebSocket
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Validate checks a listener entry without opening anything.
func (c Config) Validate() error {
	if c.Address == "" {
		return errors.New("listener address is empty")
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("listener address %q: %w", c.Address, err)
	}
	if c.ConnectRate < 0 {
		return fmt.Errorf("listener %s: connect_rate %v must not be negative", c.Address, c.ConnectRate)
	}
	if c.TLS != nil {
		if err := c.TLS.validate(); err != nil {
			return fmt.Errorf("listener %s: %w", c.Address, err)
		}
	}
	return nil
}

// Listen opens the listener cfg describes. The returned net.Listener is a
// *Listener, which also implements Reloader. ctx bounds only the opening;
// Close stops the listener (established connections are not touched).
// A certificate, key or CA file that is missing or does not parse is an
// error naming the file.
func Listen(ctx context.Context, cfg Config, log *slog.Logger) (net.Listener, error) {
	return listen(ctx, cfg, log, options{})
}

func listen(ctx context.Context, cfg Config, log *slog.Logger, o options) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.handshakeTimeout == 0 {
		o.handshakeTimeout = defaultHandshakeTimeout
	}
	if o.logInterval == 0 {
		o.logInterval = defaultLogInterval
	}
	if o.now == nil {
		o.now = time.Now
	}
	l := &Listener{
		cfg:              cfg,
		log:              log.With("component", "listener"),
		handshakeTimeout: o.handshakeTimeout,
		logInterval:      o.logInterval,
		out:              make(chan net.Conn),
	}
	if cfg.TLS != nil {
		s, err := loadTLSState(*cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", cfg.Address, err)
		}
		l.certs = &certHolder{cfg: *cfg.TLS}
		l.certs.state.Store(s)
		l.tlsConfig = l.certs.serverConfig()
	}
	if cfg.ConnectRate > 0 {
		l.limiter = newRateLimiter(cfg.ConnectRate, o.now)
	}
	// No TCP keep-alive probes by default: MQTT has its own keep alive,
	// and the broker turns probes on only for a client that asks for none
	// (brokercore). It saves four setsockopt calls per connection.
	lc := net.ListenConfig{KeepAlive: -1}
	tcp, err := lc.Listen(ctx, "tcp", cfg.Address)
	if errors.Is(err, syscall.EADDRINUSE) {
		// net's error already reads "listen tcp ADDR: bind: address already in use".
		return nil, fmt.Errorf("%w (another broker, often mosquitto's own service, holds the port: stop it or change the listener's address)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Address, err)
	}
	l.tcp = tcp
	l.addr = tcp.Addr().String()
	l.refusals = newRefusalLog(l.log, l.addr, o.logInterval)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if l.certs != nil {
		warnExpiry(l, l.certs.state.Load(), cfg.TLS.CertFile)
	}

	// A plain MQTT listener accepts in the caller of Accept: no goroutine
	// and no hand-over per connection. TLS handshakes and WebSocket
	// upgrades run in goroutines of their own and arrive through l.out.
	l.inline = l.certs == nil && !cfg.WebSocket
	if !l.inline {
		ready := l.out
		if cfg.WebSocket {
			toHTTP := make(chan net.Conn)
			ready = toHTTP
			l.ws = l.newWSServer(l.out)
			cl := &chanListener{l: l, in: toHTTP, done: make(chan struct{})}
			l.wg.Go(func() { l.ws.Serve(cl) })
		}
		l.wg.Go(func() { l.acceptLoop(ready) })
	}
	l.wg.Go(l.flushLoop)
	l.log.Info("listening", "listener", l.addr, "tls", cfg.TLS != nil, "websocket", cfg.WebSocket,
		"connect_rate", cfg.ConnectRate)
	return l, nil
}

// acceptLoop takes connections from the socket, applies the rate limit,
// and hands them on: plain ones at once (wrapped to spot a TLS client),
// TLS ones after a handshake in their own goroutine.
func (l *Listener) acceptLoop(ready chan<- net.Conn) {
	for {
		c, ok := l.acceptTCP()
		if !ok {
			return
		}
		if l.certs == nil {
			l.deliver(ready, &sniffConn{Conn: c, l: l, ws: l.cfg.WebSocket})
			continue
		}
		l.wg.Go(func() {
			if tc := l.handshake(l.ctx, c); tc != nil {
				l.deliver(ready, tc)
			}
		})
	}
}

// acceptTCP returns the next connection the rate limit lets in; false once
// the listener is closed. Other accept errors (out of file descriptors and
// the like) are logged and retried with a back-off, as net/http does.
func (l *Listener) acceptTCP() (net.Conn, bool) {
	var delay time.Duration
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil, false
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Error("accept failed; retrying", "listener", l.addr, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return nil, false
			}
			continue
		}
		delay = 0
		if l.limiter != nil && !l.limiter.allow() {
			client := c.RemoteAddr().String()
			l.refusals.report("connect-rate", client, fmt.Sprintf(
				"client %s refused: listener %s accepts at most %g new connections per second (connect_rate)",
				client, l.addr, l.cfg.ConnectRate))
			c.Close()
			continue
		}
		return c, true
	}
}

// deliver waits for the next stage to take c, or closes it if the
// listener is closing.
func (l *Listener) deliver(ch chan<- net.Conn, c net.Conn) {
	select {
	case ch <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

func (l *Listener) flushLoop() {
	t := time.NewTicker(l.logInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.refusals.flush()
		case <-l.ctx.Done():
			return
		}
	}
}

// Accept waits for the next connection ready for MQTT. After Close it
// returns an error wrapping net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	if l.inline {
		if c, ok := l.acceptTCP(); ok {
			return &sniffConn{Conn: c, l: l}, nil
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tcp.Addr(), Err: net.ErrClosed}
	}
	select {
	case c := <-l.out:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tcp.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting, abandons handshakes in progress and waits for
// the listener's goroutines. Connections already returned by Accept stay
// open; they belong to the broker.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.tcp.Close()
		if l.ws != nil {
			shutdownWS(l.ws)
		}
		l.wg.Wait()
		l.refusals.flush()
	})
	return l.closeErr
}

// Addr is the bound address (with the real port if the config said :0).
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }
