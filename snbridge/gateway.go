package snbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// peerIdle is how long an address that never connected is remembered.
const peerIdle = 2 * time.Minute

// lostRetention is how long a lost clean-session client stays in Stats.
const lostRetention = time.Hour

// workerQueue is each worker's queue of datagrams.
const workerQueue = 512

// maxPeers bounds the addresses remembered without a connection.
const maxPeers = 65536

// Gateway is the MQTT-SN gateway. New opens its transports; Run serves them
// until its context is done.
//
// Lock order: Gateway.mu, then client.mu. Neither is held while calling into
// a msg.Session or msg.Publisher (they may call Deliver synchronously).
type Gateway struct {
	cfg      Config
	sessions msg.Sessions
	qosm1Mu  sync.Mutex
	qosm1    msg.Session // QoS -1 publishes, under the ACL; opened on first use
	log      *slog.Logger
	now      func() time.Time
	predef   *predefined
	bcast    netip.AddrPort // where ADVERTISE and GWINFO go on the UDP transport
	udp      *udpTransport
	trs      []*trEntry
	cnt      counters
	rl       rateLog
	work     []chan job
	bufs     sync.Pool
	ctx      context.Context // Run's context, for session calls
	ran      atomic.Bool
	ticks    atomic.Uint64 // timer passes done, for tests

	mu         sync.Mutex
	peers      map[peerKey]*peer
	clients    map[string]*client
	nextWorker int
}

type trEntry struct {
	idx       int
	t         Transport
	name      string // "mqtt-sn udp 127.0.0.1:1884"
	broadcast bool   // ADVERTISE/GWINFO go to Gateway.bcast
	datagram  bool   // a UDP socket (not a serial line)
}

type peerKey struct {
	tr   int
	addr net.Addr // comparable: udpAddr, dtlsAddr or serialAddr
	node string   // Wireless Node Id behind a forwarder (section 5.5)
}

// peer is one address (plus forwarder node id) datagrams come from.
type peer struct {
	key      peerKey
	tr       *trEntry
	addr     net.Addr
	encap    bool
	ctrl     byte
	node     []byte
	worker   int
	pending  atomic.Int32
	lastSeen atomic.Int64 // clock, unix nanoseconds
	client   *client      // guarded by Gateway.mu
}

func (p *peer) String() string {
	if p.encap {
		return fmt.Sprintf("%v node %x", p.addr, p.node)
	}
	return p.addr.String()
}

type job struct {
	p *peer
	b []byte
}

// New checks cfg, loads the predefined topics and opens the transports
// (UDP, optional UDP6, serial and DTLS), so that Addr is known before Run.
// sessions opens a broker session per SN client, and one of the gateway's
// own for QoS -1 messages, which come without a connection (section 6.8),
// so the ACL applies to every publish as mqttsn.username.
func New(cfg Config, sessions msg.Sessions, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snbridge config: %w", err)
	}
	if sessions == nil {
		return nil, errors.New("snbridge: New needs a msg.Sessions")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	pd, err := loadPredefined(cfg)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg: cfg, sessions: sessions, log: log.With("component", "snbridge"),
		now: cfg.Clock, predef: pd, ctx: context.Background(),
		peers: map[peerKey]*peer{}, clients: map[string]*client{},
	}
	g.rl = rateLog{log: g.log, every: time.Minute, seen: map[string]time.Time{}}
	g.bufs.New = func() any { b := make([]byte, 0, 512); return &b }

	g.udp, err = listenUDP("udp4", cfg.Listen, cfg.ReadBuffer)
	if err != nil {
		return nil, fmt.Errorf("mqttsn.listen: %w", err)
	}
	g.addTransport(g.udp, "udp", true, true)
	if err := g.setBroadcast(); err != nil {
		g.closeTransports()
		return nil, err
	}
	if cfg.Listen6 != "" {
		u6, err := listenUDP("udp6", cfg.Listen6, cfg.ReadBuffer)
		if err != nil {
			g.closeTransports()
			return nil, fmt.Errorf("mqttsn.listen6: %w", err)
		}
		g.addTransport(u6, "udp6", false, true)
	}
	if cfg.Serial != nil {
		s, err := openSerial(cfg.Serial.Device, cfg.Serial.Baud)
		if err != nil {
			g.closeTransports()
			return nil, fmt.Errorf("mqttsn.serial: %w", err)
		}
		g.addTransport(s, "serial", false, false)
	}
	if cfg.DTLS != nil {
		d, err := listenDTLS(*cfg.DTLS, g.log)
		if err != nil {
			g.closeTransports()
			return nil, err
		}
		g.addTransport(d, "dtls", false, true)
	}
	return g, nil
}

func (g *Gateway) addTransport(t Transport, kind string, bcast, datagram bool) {
	g.trs = append(g.trs, &trEntry{idx: len(g.trs), t: t, name: "mqtt-sn " + kind + " " + t.LocalAddr().String(), broadcast: bcast, datagram: datagram})
}

func (g *Gateway) setBroadcast() error {
	b := g.cfg.Broadcast
	if b == "" {
		port := g.udp.c.LocalAddr().(*net.UDPAddr).Port
		b = "255.255.255.255:" + strconv.Itoa(port)
	}
	ua, err := net.ResolveUDPAddr("udp4", b)
	if err != nil {
		return fmt.Errorf("mqttsn.broadcast %q: %w", b, err)
	}
	ap := ua.AddrPort()
	g.bcast = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return nil
}

func (g *Gateway) closeTransports() {
	for _, t := range g.trs {
		_ = t.t.Close()
	}
}

// Reload re-reads what the transports can take without a restart: the
// DTLS port's psk_file or certificate (SIGHUP). A broken file keeps the
// old keys and the error names it.
func (g *Gateway) Reload() error {
	var errs []error
	for _, t := range g.trs {
		if r, ok := t.t.(interface{ Reload() error }); ok {
			if err := r.Reload(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Addr is the local address of the UDP (IPv4) socket.
func (g *Gateway) Addr() net.Addr { return g.udp.LocalAddr() }

// Addrs lists every transport's local address (UDP, UDP6, serial device).
func (g *Gateway) Addrs() []net.Addr {
	out := make([]net.Addr, len(g.trs))
	for i, t := range g.trs {
		out[i] = t.t.LocalAddr()
	}
	return out
}

// Run serves until ctx is done, then closes the transports and every open
// client session (without publishing wills: the clients did not fail, the
// gateway stopped) and returns after every goroutine it started exited.
// Run may be called once.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.ran.CompareAndSwap(false, true) {
		return errors.New("snbridge: Run called twice")
	}
	g.ctx = ctx
	defer g.closeQoSMinus1()
	g.log.Info("mqtt-sn gateway listening", "addrs", fmt.Sprint(g.Addrs()), "gateway_id", g.cfg.GatewayID, "broadcast", g.bcast.String())
	if got := g.udp.readBuffer(); got > 0 && got < g.cfg.ReadBuffer {
		// The kernel capped SO_RCVBUF: bursts may be dropped before we see them.
		g.log.Warn("mqtt-sn: UDP receive buffer smaller than mqttsn.read_buffer; raise net.core.rmem_max (sysctl) to avoid drops in bursts",
			"requested", g.cfg.ReadBuffer, "got", got)
	}

	var workers sync.WaitGroup
	g.work = make([]chan job, g.cfg.Workers)
	for i := range g.work {
		ch := make(chan job, workerQueue)
		g.work[i] = ch
		workers.Go(func() {
			for j := range ch {
				g.handle(j.p, j.b)
				j.p.pending.Add(-1) // after: the reaper skips peers with work pending
			}
		})
	}
	var readers sync.WaitGroup
	for _, t := range g.trs {
		readers.Go(func() { g.readLoop(t) })
	}
	var ticker sync.WaitGroup
	tickCtx, stopTick := context.WithCancel(context.Background())
	ticker.Go(func() { g.tickLoop(tickCtx) })

	<-ctx.Done()
	g.closeTransports()
	readers.Wait()
	for _, ch := range g.work {
		close(ch)
	}
	workers.Wait()
	stopTick()
	ticker.Wait()
	g.closeAll()
	g.log.Info("mqtt-sn gateway stopped")
	return nil
}

// readLoop reads datagrams from one transport and hands them to the
// client's worker. It never blocks on a worker: a full queue is a counted
// drop.
func (g *Gateway) readLoop(t *trEntry) {
	buf := make([]byte, 65536)
	var backoff time.Duration
	for {
		n, from, err := t.t.ReadPacket(buf)
		if err == nil {
			backoff = 0
		} else {
			var fe errFrame
			if errors.As(err, &fe) {
				g.cnt.drop(DropMalformed)
				g.rl.warn(g.now(), DropMalformed, from.String(), "mqtt-sn: bad frame dropped", "error", err)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			g.rl.warn(g.now(), DropMalformed, t.name, "mqtt-sn: read failed", "error", err)
			if !t.datagram {
				g.log.Error("mqtt-sn: serial transport stopped", "transport", t.name, "error", err)
				return // a serial line that failed stays failed
			}
			// Back off on repeated socket errors, as net/http's Serve does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		g.dispatch(t, from, buf[:n])
	}
}

func (g *Gateway) dispatch(t *trEntry, from net.Addr, b []byte) {
	key := peerKey{tr: t.idx, addr: from}
	var enc *snpacket.Encapsulated
	if len(b) >= 2 && b[0] != 0x01 && snpacket.MsgType(b[1]) == snpacket.TypeEncapsulated {
		p, _, err := snpacket.Decode(b)
		if err != nil {
			g.cnt.drop(DropMalformed)
			g.rl.warn(g.now(), DropMalformed, from.String(), "mqtt-sn: bad encapsulated message dropped", "error", err)
			return
		}
		enc = p.(*snpacket.Encapsulated)
		key.node = string(enc.NodeID)
		b = enc.Msg
	}
	p := g.peerFor(key, t, enc) // counts the datagram as pending
	if p == nil {
		g.cnt.drop(DropTooManyPeers)
		g.rl.warn(g.now(), DropTooManyPeers, from.String(), "mqtt-sn: too many addresses without a connection")
		return
	}
	if int(p.pending.Load()) > g.cfg.PeerQueue {
		p.pending.Add(-1)
		g.cnt.drop(DropFlood)
		g.rl.warn(g.now(), DropFlood, p.String(), "mqtt-sn: address sends faster than it is served, dropping")
		return
	}
	select {
	case g.work[p.worker] <- job{p: p, b: append([]byte(nil), b...)}:
	default:
		p.pending.Add(-1)
		g.cnt.drop(DropOverload)
		g.rl.warn(g.now(), DropOverload, p.String(), "mqtt-sn: gateway overloaded, dropping")
	}
}

// peerFor returns the peer for key, creating it, with its last-seen time
// set and one more datagram pending: both under g.mu, so that the reaper in
// tick never removes a peer a datagram is on its way to.
func (g *Gateway) peerFor(key peerKey, t *trEntry, enc *snpacket.Encapsulated) *peer {
	now := g.now().UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.peers[key]; p != nil {
		if enc != nil {
			p.ctrl = enc.Ctrl
		}
		p.lastSeen.Store(now)
		p.pending.Add(1)
		return p
	}
	if len(g.peers) >= maxPeers {
		return nil
	}
	// Round robin: peers spread evenly over the workers, so that the
	// publishes waiting for the broker at once are as many as the workers.
	p := &peer{key: key, tr: t, addr: key.addr, worker: g.nextWorker % len(g.work)}
	g.nextWorker++
	if enc != nil {
		p.encap, p.ctrl, p.node = true, enc.Ctrl, []byte(key.node)
	}
	p.lastSeen.Store(now)
	p.pending.Add(1)
	g.peers[key] = p
	return p
}

// send encodes pk and writes it to p, encapsulated again if p sits behind
// a forwarder (section 5.5).
func (g *Gateway) send(p *peer, pk snpacket.Packet) {
	bp := g.bufs.Get().(*[]byte)
	defer g.bufs.Put(bp)
	b := (*bp)[:0]
	if p.encap {
		b = append(b, byte(3+len(p.node)), byte(snpacket.TypeEncapsulated), p.ctrl)
		b = append(b, p.node...)
	}
	b, err := snpacket.Append(b, pk)
	*bp = b
	if err != nil {
		g.log.Error("mqtt-sn: encode failed", "type", pk.Type().String(), "addr", p.String(), "error", err)
		return
	}
	if err := p.tr.t.WritePacket(b, p.addr); err != nil {
		g.cnt.drop(DropWriteError)
		g.rl.warn(g.now(), DropWriteError, p.String(), "mqtt-sn: send failed", "type", pk.Type().String(), "error", err)
		return
	}
	g.cnt.out.Add(1)
}

// broadcast sends pk to the broadcast address on the UDP transport, and to
// the serial line if there is one (section 6.1).
func (g *Gateway) broadcast(pk snpacket.Packet) {
	b, err := snpacket.Encode(pk)
	if err != nil {
		return
	}
	for _, t := range g.trs {
		var to net.Addr
		switch {
		case t.broadcast:
			to = udpAddr(g.bcast)
		case !t.datagram:
			to = t.t.LocalAddr()
		default:
			continue
		}
		if err := t.t.WritePacket(b, to); err != nil {
			g.cnt.drop(DropWriteError)
			g.rl.warn(g.now(), DropWriteError, to.String(), "mqtt-sn: broadcast failed", "type", pk.Type().String(), "error", err)
			continue
		}
		g.cnt.out.Add(1)
	}
}

// tickLoop drives keepalive, sleep and retry timers and ADVERTISE.
func (g *Gateway) tickLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.TickInterval)
	defer t.Stop()
	var nextAdv time.Time
	for {
		now := g.now()
		if g.cfg.AdvertiseInterval > 0 && !now.Before(nextAdv) {
			// Section 6.1: ADVERTISE every T_ADV, Duration = T_ADV in seconds.
			g.broadcast(&snpacket.Advertise{GatewayID: g.cfg.GatewayID, Duration: uint16(g.cfg.AdvertiseInterval / time.Second)})
			nextAdv = now.Add(g.cfg.AdvertiseInterval)
		}
		g.tick(now)
		g.ticks.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) tick(now time.Time) {
	g.mu.Lock()
	cs := make([]*client, 0, len(g.clients))
	for _, c := range g.clients {
		cs = append(cs, c)
	}
	for k, p := range g.peers {
		if p.client == nil && p.pending.Load() == 0 && now.Sub(time.Unix(0, p.lastSeen.Load())) > peerIdle {
			delete(g.peers, k)
		}
	}
	g.mu.Unlock()
	for _, c := range cs {
		c.tick(now)
	}
}

// closeAll closes every open session at shutdown.
func (g *Gateway) closeAll() {
	g.mu.Lock()
	cs := make([]*client, 0, len(g.clients))
	for _, c := range g.clients {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		s := c.sess
		c.sess = nil
		c.mu.Unlock()
		if s != nil {
			_ = s.Close(false)
		}
	}
}

// Stats returns a snapshot of client states and counters.
func (g *Gateway) Stats() Stats {
	s := Stats{
		MessagesIn: g.cnt.in.Load(), MessagesOut: g.cnt.out.Load(),
		PublishIn: g.cnt.pubIn.Load(), PublishOut: g.cnt.pubOut.Load(),
		Drops: make(map[string]uint64, numDropReasons),
	}
	for i := range g.cnt.drops {
		s.Drops[DropReason(i).String()] = g.cnt.drops[i].Load()
	}
	g.mu.Lock()
	cs := make([]*client, 0, len(g.clients))
	for _, c := range g.clients {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		st := c.state
		c.mu.Unlock()
		switch st {
		case stateActive, stateWillTopic, stateWillMsg, stateConnecting:
			s.Active++
		case stateAsleep:
			s.Asleep++
		case stateAwake:
			s.Awake++
		case stateLost:
			s.Lost++
		case stateDisconnected:
			s.Disconnected++
		}
	}
	return s
}

// qosMinus1Session returns the session QoS -1 publishes go through. They
// come without a connection (section 6.8), but the ACL must still apply to
// them, so they publish as mqttsn.username through one session of the
// gateway's own, opened on the first such publish (so a gateway whose nodes
// never use QoS -1 shows no extra client).
func (g *Gateway) qosMinus1Session() (msg.Session, error) {
	g.qosm1Mu.Lock()
	defer g.qosm1Mu.Unlock()
	if g.qosm1 != nil {
		return g.qosm1, nil
	}
	s, _, err := g.sessions.Open(g.ctx, msg.SessionOptions{
		ClientID: fmt.Sprintf("outpost-mqttsn-gw%d-qos-1", g.cfg.GatewayID), Username: g.cfg.Username,
		Listener: "mqtt-sn qos -1", CleanStart: true, Deliver: func(msg.Message) {},
	})
	if err != nil {
		return nil, fmt.Errorf("open the QoS -1 session: %w", err)
	}
	g.qosm1 = s
	return s, nil
}

func (g *Gateway) closeQoSMinus1() {
	g.qosm1Mu.Lock()
	defer g.qosm1Mu.Unlock()
	if g.qosm1 != nil {
		_ = g.qosm1.Close(false)
		g.qosm1 = nil
	}
}
