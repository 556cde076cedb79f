package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// connFlags are the connection flags mosquitto_pub and mosquitto_sub share.
type connFlags struct {
	host, url, id, user, pass, version string
	port, keepalive                    int
	qos                                int
	noClean, debug, insecure           bool
	cafile, cert, key                  string
	sessionExpiry                      string
	topics                             []string
}

func (o *connFlags) add(f *pflag.FlagSet, what string) {
	// -h is the host, as in mosquitto_pub/sub, so help is --help only.
	f.Bool("help", false, "help for "+what)
	f.StringVarP(&o.host, "host", "h", "localhost", "broker host")
	f.IntVarP(&o.port, "port", "p", 0, "broker port (default 1883, 8883 with TLS)")
	f.StringVarP(&o.url, "url", "L", "", "mqtt(s)|ws(s)://[user[:password]@]host[:port]/topic: all of that in one")
	f.StringVarP(&o.id, "id", "i", "", "client id (default outpost-"+what+"-<random>)")
	f.StringVarP(&o.user, "username", "u", "", "user name")
	f.StringVarP(&o.pass, "pw", "P", "", "password")
	f.StringVarP(&o.version, "protocol-version", "V", "mqttv311", "mqttv31, mqttv311 or mqttv5 (also 31, 311, 5)")
	f.IntVarP(&o.keepalive, "keepalive", "k", 60, "keep alive in seconds (0 disables)")
	f.IntVarP(&o.qos, "qos", "q", 0, "quality of service: 0, 1 or 2")
	f.BoolVarP(&o.noClean, "disable-clean-session", "c", false, "keep the session on the broker after disconnecting (needs -i)")
	f.StringVarP(&o.sessionExpiry, "session-expiry-interval", "x", "", "v5 session expiry in seconds; -1 or ∞ never (default with -c: never)")
	f.BoolVarP(&o.debug, "debug", "d", false, "print debug messages to stderr")
	f.StringVar(&o.cafile, "cafile", "", "CA certificates (PEM) to verify the broker; enables TLS")
	f.StringVar(&o.cert, "cert", "", "client certificate (PEM) for mutual TLS; enables TLS")
	f.StringVar(&o.key, "key", "", "private key (PEM) of --cert")
	f.BoolVar(&o.insecure, "insecure", false, "do not check that the broker certificate's name matches the host")
	f.StringArrayVarP(&o.topics, "topic", "t", nil, "topic (pub) or topic filter (sub, repeatable)")
}

// config turns the flags into a client.Config, as mosquitto's clients do.
func (o *connFlags) config(cmd *cobra.Command, what string) (client.Config, error) {
	var cfg client.Config
	switch strings.ToLower(o.version) {
	case "mqttv31", "31":
		cfg.ProtocolVersion = packet.V31
	case "mqttv311", "311", "":
		cfg.ProtocolVersion = packet.V311
	case "mqttv5", "5":
		cfg.ProtocolVersion = packet.V5
	default:
		return cfg, fmt.Errorf("-V %q: want mqttv31, mqttv311 or mqttv5", o.version)
	}
	if o.qos < 0 || o.qos > 2 {
		return cfg, fmt.Errorf("-q %d: QoS must be 0, 1 or 2", o.qos)
	}
	if o.keepalive < 0 || o.keepalive > 65535 {
		return cfg, fmt.Errorf("-k %d: keep alive must be 0..65535 seconds", o.keepalive)
	}
	useTLS := o.cafile != "" || o.cert != ""
	scheme, host, port := "mqtt", o.host, o.port
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil {
			return cfg, fmt.Errorf("-L %q: %w", o.url, err)
		}
		switch u.Scheme {
		case "mqtt", "mqtts", "ws", "wss":
			scheme = u.Scheme
		default:
			return cfg, fmt.Errorf("-L %q: scheme must be mqtt, mqtts, ws or wss", o.url)
		}
		host = u.Hostname()
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return cfg, fmt.Errorf("-L %q: port: %w", o.url, err)
			}
			port = n
		}
		if u.User != nil {
			o.user = u.User.Username()
			if pw, ok := u.User.Password(); ok {
				o.pass = pw
			}
		}
		if scheme == "mqtt" || scheme == "mqtts" {
			// mosquitto's -L: the path is the topic.
			if t := strings.TrimPrefix(u.Path, "/"); t != "" {
				o.topics = append(o.topics, t)
			}
		} else {
			// WebSocket: the path is the HTTP path; keep it, drop the
			// credentials.
			w := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawQuery: u.RawQuery}
			cfg.URL = w.String()
		}
		useTLS = useTLS || scheme == "mqtts" || scheme == "wss"
	}
	if useTLS && scheme == "mqtt" {
		scheme = "mqtts"
	}
	if cfg.URL == "" {
		hp := host
		if port != 0 {
			hp = net.JoinHostPort(host, strconv.Itoa(port))
		} else if strings.Contains(host, ":") {
			hp = "[" + host + "]"
		}
		cfg.URL = scheme + "://" + hp
		if scheme == "ws" || scheme == "wss" {
			cfg.URL += "/mqtt"
		}
	}
	if useTLS {
		tc, err := o.tlsConfig()
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tc
	}
	cfg.ClientID = o.id
	if cfg.ClientID == "" {
		if o.noClean {
			return cfg, errors.New("-c needs a client id (-i): the broker keeps the session under it")
		}
		var r [4]byte
		rand.Read(r[:])
		cfg.ClientID = "outpost-" + what + "-" + hex.EncodeToString(r[:])
	}
	cfg.Username = o.user
	if o.pass != "" {
		cfg.Password = []byte(o.pass)
	}
	cfg.CleanStart = !o.noClean
	if o.keepalive == 0 {
		cfg.KeepAlive = -1
	} else {
		cfg.KeepAlive = time.Duration(o.keepalive) * time.Second
	}
	switch o.sessionExpiry {
	case "":
		if o.noClean {
			cfg.SessionExpiry = math.MaxUint32
		}
	case "-1", "∞":
		cfg.SessionExpiry = math.MaxUint32
	default:
		n, err := strconv.ParseUint(o.sessionExpiry, 10, 32)
		if err != nil {
			return cfg, fmt.Errorf("-x %q: want seconds, -1 or ∞", o.sessionExpiry)
		}
		cfg.SessionExpiry = uint32(n)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	if o.debug {
		cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg, nil
}

func (o *connFlags) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.cafile != "" {
		pem, err := os.ReadFile(o.cafile)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile %s: no PEM certificate in it", o.cafile)
		}
	}
	if o.cert != "" || o.key != "" {
		if o.cert == "" || o.key == "" {
			return nil, errors.New("--cert and --key go together")
		}
		kp, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("--cert %s --key %s: %w", o.cert, o.key, err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	if o.insecure {
		// As mosquitto's --insecure: the chain is still verified, only
		// the host name is not.
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: broker sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}

type pubOpts struct {
	connFlags
	message            string
	file               string
	lines, null, stdin bool
	retain             bool
}

// newPubCmd is `outpost pub`, mosquitto_pub with its common flags, on our
// own client (brokercore/client).
func newPubCmd() *cobra.Command {
	var o pubOpts
	cmd := &cobra.Command{
		Use:   "pub -t topic (-m message | -f file | -l | -s | -n) [flags]",
		Short: "Publish MQTT messages (flags as mosquitto_pub)",
		Long: `Publish one message, or one per line of standard input (-l), to an MQTT broker,
with mosquitto_pub's flags. It waits for the broker's acknowledgement at QoS 1
and 2 and exits non-zero if the broker refuses the message.`,
		Example: `  outpost pub -t sensors/test -m 21.5
  outpost pub -h cloud.example.com -p 8883 --cafile ca.pem -q 1 -t a/b -m hi
  outpost pub -L mqtts://user:pw@cloud.example.com/site/cmd -V mqttv5 -m reboot
  tail -F /var/log/x | outpost pub -t logs -l -q 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPub(cmd, &o) },
	}
	f := cmd.Flags()
	o.add(f, "pub")
	f.StringVarP(&o.message, "message", "m", "", "message payload")
	f.StringVarP(&o.file, "file", "f", "", "send the contents of a file as the message")
	f.BoolVarP(&o.lines, "stdin-line", "l", false, "send each line of standard input as a message")
	f.BoolVarP(&o.stdin, "stdin-file", "s", false, "send all of standard input as one message")
	f.BoolVarP(&o.null, "null-message", "n", false, "send a zero-length message")
	f.BoolVarP(&o.retain, "retain", "r", false, "retain the message")
	return cmd
}

func runPub(cmd *cobra.Command, o *pubOpts) error {
	cfg, err := o.config(cmd, "pub")
	if err != nil {
		return err
	}
	if len(o.topics) != 1 {
		return errors.New("pub: exactly one topic (-t or in -L) is needed")
	}
	topic := o.topics[0]
	sources := 0
	for _, set := range []bool{cmd.Flags().Changed("message"), o.file != "", o.lines, o.stdin, o.null} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return errors.New("pub: give exactly one of -m, -f, -l, -s and -n")
	}
	var payload []byte
	switch {
	case cmd.Flags().Changed("message"):
		payload = []byte(o.message)
	case o.file != "":
		if payload, err = os.ReadFile(o.file); err != nil {
			return fmt.Errorf("pub: -f: %w", err)
		}
	case o.stdin:
		if payload, err = io.ReadAll(cmd.InOrStdin()); err != nil {
			return fmt.Errorf("pub: -s: reading standard input: %w", err)
		}
	case o.null:
		payload = []byte{}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pub: %w", err)
	}
	defer c.Close()
	if !o.lines {
		if err := c.Publish(ctx, &client.Message{Topic: topic, Payload: payload, QoS: byte(o.qos), Retain: o.retain}); err != nil {
			return fmt.Errorf("pub: %w", err)
		}
		return c.Disconnect(ctx)
	}
	// -l: one message per line, pipelined within the in-flight window;
	// stop at end of input, then wait for every acknowledgement.
	var toks []*client.Token
	sc := bufio.NewScanner(cmd.InOrStdin())
	sc.Buffer(make([]byte, 64<<10), packet.MaxRemainingLength)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		t, err := c.PublishAsync(ctx, &client.Message{Topic: topic, Payload: line, QoS: byte(o.qos), Retain: o.retain})
		if err != nil {
			return fmt.Errorf("pub: %w", err)
		}
		toks = append(toks, t)
		// Drop finished tokens so a long stream does not grow memory.
		for len(toks) > 0 {
			select {
			case <-toks[0].Done():
				if err := toks[0].Err(); err != nil {
					return fmt.Errorf("pub: %w", err)
				}
				toks = toks[1:]
				continue
			default:
			}
			break
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("pub: -l: reading standard input: %w", err)
	}
	for _, t := range toks {
		if err := t.Wait(ctx); err != nil {
			return fmt.Errorf("pub: %w", err)
		}
	}
	return c.Disconnect(ctx)
}

type subOpts struct {
	connFlags
	verbose, noNewline, noRetained bool
	count, timeout                 int
}

// newSubCmd is `outpost sub`, mosquitto_sub with its common flags.
func newSubCmd() *cobra.Command {
	var o subOpts
	cmd := &cobra.Command{
		Use:   "sub -t filter [-t filter...] [flags]",
		Short: "Subscribe and print MQTT messages (flags as mosquitto_sub)",
		Long: `Subscribe to one or more topic filters and print each message's payload (with
-v, the topic first), with mosquitto_sub's flags. -C exits after that many
messages, -W after that many seconds (exit status 27, as mosquitto_sub).`,
		Example: `  outpost sub -t 'sensors/#' -v
  outpost sub -h cloud.example.com -p 8883 --cafile ca.pem --cert me.pem --key me.key -t 'sites/+/cmd/#'
  outpost sub -t alarm -C 1 -W 30`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSub(cmd, &o) },
	}
	f := cmd.Flags()
	o.add(f, "sub")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print the topic before each payload")
	f.BoolVarP(&o.noNewline, "no-newline", "N", false, "do not add a newline after each payload")
	f.BoolVarP(&o.noRetained, "retained-skip", "R", false, "do not print stale (retained) messages")
	f.IntVarP(&o.count, "count", "C", 0, "exit after this many messages")
	f.IntVarP(&o.timeout, "timeout", "W", 0, "exit after this many seconds (status 27)")
	return cmd
}

func runSub(cmd *cobra.Command, o *subOpts) error {
	cfg, err := o.config(cmd, "sub")
	if err != nil {
		return err
	}
	if len(o.topics) == 0 {
		return errors.New("sub: at least one topic filter (-t or in -L) is needed")
	}
	if o.count < 0 || o.timeout < 0 {
		return errors.New("sub: -C and -W must not be negative")
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	enough := make(chan struct{})
	printed := 0
	// The handler runs on the client's reader goroutine, one message at a
	// time; only it touches out and printed until enough is closed.
	handle := func(m *client.Message) {
		if (o.noRetained && m.Retain) || (o.count > 0 && printed >= o.count) {
			return
		}
		if o.verbose {
			out.WriteString(m.Topic)
			out.WriteByte(' ')
		}
		out.Write(m.Payload)
		if !o.noNewline {
			out.WriteByte('\n')
		}
		out.Flush()
		printed++
		if o.count > 0 && printed == o.count {
			close(enough)
		}
	}
	cfg.OnMessage = handle
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return fmt.Errorf("sub: %w", err)
	}
	defer c.Close()
	subs := make([]packet.Subscription, len(o.topics))
	for i, t := range o.topics {
		subs[i] = packet.Subscription{Filter: t, QoS: byte(o.qos)}
	}
	if _, err := c.Subscribe(ctx, subs, handle); err != nil {
		return fmt.Errorf("sub: %w", err)
	}
	var timeout <-chan time.Time
	if o.timeout > 0 {
		t := time.NewTimer(time.Duration(o.timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-enough:
	case <-ctx.Done(): // SIGINT/SIGTERM
	case <-c.Done():
		return fmt.Errorf("sub: %w", c.Err())
	case <-timeout:
		c.Disconnect(context.Background())
		fmt.Fprintf(cmd.ErrOrStderr(), "Timed out\n")
		return exitError{code: 27}
	}
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Disconnect(dctx)
}
