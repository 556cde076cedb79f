package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMosquitto runs a real mosquitto on 127.0.0.1 for one test, taking
// anonymous clients and with persistence, as every client test wants;
// opts adds the test's own settings.
func startMosquitto(t testing.TB, opts mosquittotest.Options) *mosquittotest.Server {
	t.Helper()
	opts.AllowAnonymous, opts.Persistence = true, true
	return mosquittotest.Start(t, opts)
}

// proxy sits between a client and the broker, records the packets each way
// and can hold back server-to-client packets of chosen types or cut every
// connection, to simulate a link that drops.
type proxy struct {
	t       *testing.T
	ln      net.Listener
	target  string
	version byte
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []*proxyConn
	hold  map[packet.Type]bool
	drop  map[packet.Type]bool
	cond  *sync.Cond
}

type proxyConn struct {
	client, server net.Conn
	closed         atomic.Bool
	up, down       []packet.Packet // client->server, server->client (forwarded)
}

func newProxy(t *testing.T, target string, version byte) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, version: version, hold: map[packet.Type]bool{}, drop: map[packet.Type]bool{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(pc, c, s, true)
		go p.pump(pc, s, c, false)
	}
}

// pump forwards whole packets from src to dst, recording them; server to
// client packets of a held type wait until released or cut.
func (p *proxy) pump(pc *proxyConn, src, dst net.Conn, up bool) {
	defer p.wg.Done()
	defer pc.close()
	br := bufio.NewReader(src)
	for {
		raw, err := packet.ReadRaw(br, 0)
		if err != nil {
			return
		}
		pk, _, err := packet.Decode(raw, p.version)
		if err != nil {
			p.t.Errorf("proxy: %v", err)
			return
		}
		p.mu.Lock()
		for !up && p.hold[pk.Type()] && !pc.closed.Load() {
			p.cond.Wait()
		}
		if pc.closed.Load() {
			p.mu.Unlock()
			return
		}
		if !up && p.drop[pk.Type()] {
			p.mu.Unlock()
			continue
		}
		if up {
			pc.up = append(pc.up, pk)
		} else {
			pc.down = append(pc.down, pk)
		}
		p.mu.Unlock()
		if _, err := dst.Write(raw); err != nil {
			return
		}
	}
}

func (pc *proxyConn) close() {
	pc.closed.Store(true)
	pc.client.Close()
	pc.server.Close()
}

// setHold holds back (or, with on false, releases) server-to-client
// packets of the given types; everything behind a held packet waits too,
// as on a TCP stream.
func (p *proxy) setHold(on bool, types ...packet.Type) {
	p.mu.Lock()
	for _, t := range types {
		p.hold[t] = on
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// setDrop swallows (or, with on false, forwards again) server-to-client
// packets of the given types: lost on a link that is about to drop. Unlike
// setHold it lets later packets through.
func (p *proxy) setDrop(on bool, types ...packet.Type) {
	p.mu.Lock()
	for _, t := range types {
		p.drop[t] = on
	}
	p.mu.Unlock()
}

// cut closes every connection through the proxy, as a dropped link does.
func (p *proxy) cut() {
	p.mu.Lock()
	conns := append([]*proxyConn(nil), p.conns...)
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// upstream returns the client-to-server packets of connection i so far.
func (p *proxy) upstream(i int) []packet.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.conns) {
		return nil
	}
	return append([]packet.Packet(nil), p.conns[i].up...)
}

func (p *proxy) downstream(i int) []packet.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.conns) {
		return nil
	}
	return append([]packet.Packet(nil), p.conns[i].down...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

func countType(ps []packet.Packet, t packet.Type) int {
	n := 0
	for _, p := range ps {
		if p.Type() == t {
			n++
		}
	}
	return n
}

// dial connects a client for the test and closes it when the test ends.
func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial %s: %v", cfg.URL, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collector gathers received messages for a test.
type collector struct {
	mu   sync.Mutex
	msgs []*Message
}

func (c *collector) handle(m *Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) all() []*Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Message(nil), c.msgs...)
}

func (c *collector) waitN(t *testing.T, n int) []*Message {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(c.all()) >= n })
	return c.all()
}

// newSilentListener accepts connections and never answers.
func newSilentListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
