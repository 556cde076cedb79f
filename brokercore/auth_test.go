package brokercore

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/auth"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// fakeAuth: password "pw" for every user; ACL: user "alice" may read and
// write everything but "secret/#"; anyone may write "open/#".
type fakeAuth struct{}

func (fakeAuth) Check(u string, p []byte) bool { return string(p) == "pw" }
func (fakeAuth) Allow(clientID, user, name string, a Access) bool {
	if strings.HasPrefix(name, "open/") {
		return true
	}
	return user == "alice" && !strings.HasPrefix(name, "secret/")
}
func (fakeAuth) CanSubscribe(clientID, user, filter string) bool {
	return user == "alice" && !topic.Match(filter, "secret/x") || topic.Match(filter, "open/x")
}

func creds(user, pass string) connOpt {
	return func(cp *packet.Connect) {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user, true, []byte(pass)
	}
}

func TestAuthentication(t *testing.T) {
	var logs syncBuf
	no := false
	b := testBroker(t, Config{AllowAnonymous: &no}, Options{Authenticator: fakeAuth{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	cases := []struct {
		version byte
		opts    []connOpt
		want    byte
	}{
		{packet.V311, []connOpt{creds("alice", "pw")}, 0},
		{packet.V311, []connOpt{creds("alice", "wrong")}, packet.V3NotAuthorized},
		{packet.V5, []connOpt{creds("alice", "wrong")}, packet.BadUserNameOrPassword},
		{packet.V311, nil, packet.V3NotAuthorized},
		{packet.V5, nil, packet.NotAuthorized},
	}
	for i, c := range cases {
		start := time.Now()
		ack := dialRaw(t, addr(b), c.version).connect("c", true, c.opts...)
		if ack.ReasonCode != c.want {
			t.Errorf("case %d: code 0x%02x, want 0x%02x", i, ack.ReasonCode, c.want)
		}
		if c.want != 0 && time.Since(start) < authFailDelay {
			t.Errorf("case %d: refused without delay", i)
		}
	}
	if strings.Contains(logs.String(), "wrong") {
		t.Fatalf("password in log:\n%s", logs.String())
	}
}

// allow_anonymous unset: allowed only while every listener is loopback.
func TestAllowAnonymousDefault(t *testing.T) {
	b, _ := New(Config{}, Options{})
	if !b.allowAnonymous() {
		t.Fatal("loopback default listener: anonymous refused")
	}
	b, _ = New(Config{Listeners: append(testListeners(), testListeners()[0])}, Options{})
	b.cfg.Listeners[1].Address = ":1883"
	if b.allowAnonymous() {
		t.Fatal("listener on every interface: anonymous allowed")
	}
}

func TestACL(t *testing.T) {
	var logs syncBuf
	b := testBroker(t, Config{}, Options{Authenticator: fakeAuth{}, Authorizer: fakeAuth{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	alice5 := connected(t, b, packet.V5, "a5", true, creds("alice", "pw"))
	bob3 := connected(t, b, packet.V311, "b3", true, creds("bob", "pw"))
	bob5 := connected(t, b, packet.V5, "b5", true, creds("bob", "pw"))
	// SUBSCRIBE of which nothing is readable: 0x80 (3.1.1), 0x87 (5).
	if a := bob3.subscribe(1, "data/#", 1); a.ReasonCodes[0] != 0x80 {
		t.Fatalf("3.1.1 SUBACK 0x%02x", a.ReasonCodes[0])
	}
	if a := bob5.subscribe(1, "data/#", 1); a.ReasonCodes[0] != packet.NotAuthorized {
		t.Fatalf("5 SUBACK 0x%02x", a.ReasonCodes[0])
	}
	// alice subscribes to # (allowed: something is readable) but must
	// not receive secret/ (read checked per message at delivery).
	alice5.subscribe(1, "#", 1)
	bob3.subscribe(2, "open/#", 1)
	// Denied PUBLISH: 3.1.1 normal ack, message dropped; v5 reason 0x87.
	bob3.send(pub("data/x", 1, 5, "no"))
	if a := bob3.recvType(packet.PUBACK).(*packet.Ack); a.ReasonCode != 0 {
		t.Fatal("3.1.1 PUBACK with a reason code")
	}
	bob5.send(pub("data/x", 2, 6, "no"))
	if a := bob5.recvType(packet.PUBREC).(*packet.Ack); a.ReasonCode != packet.NotAuthorized {
		t.Fatalf("v5 PUBREC 0x%02x, want 0x87", a.ReasonCode)
	}
	if !strings.Contains(logs.String(), "Denied PUBLISH from b3 (data/x)") {
		t.Fatalf("log:\n%s", logs.String())
	}
	alice5.send(&packet.Publish{Topic: "secret/x", Retain: true, Payload: []byte("s")})
	alice5.send(pub("data/y", 0, 0, "ok"))
	if got := alice5.recvType(packet.PUBLISH).(*packet.Publish); got.Topic != "data/y" {
		t.Fatalf("alice got %q: read right not checked", got.Topic)
	}
	// In-process session with a username is subject to the ACL.
	s, _, err := b.Open(t.Context(), msg.SessionOptions{ClientID: "sn", Username: "bob", Deliver: func(msg.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(false)
	if err := s.Publish(t.Context(), msg.Message{Topic: "data/z"}); !errors.Is(err, msg.ErrNotAuthorized) {
		t.Fatalf("in-process publish: %v", err)
	}
	// MayPublish answers for a front end acting for a user (the console).
	if b.MayPublish("console", "bob", "data/z") || !b.MayPublish("console", "alice", "data/z") {
		t.Fatal("MayPublish does not follow the ACL")
	}
	// Retained messages are read-checked too.
	a2 := connected(t, b, packet.V5, "a2", true, creds("alice", "pw"))
	a2.subscribe(1, "secret/#", 0) // CanSubscribe false for alice: refused outright
	a3 := connected(t, b, packet.V5, "a3", true, creds("alice", "pw"))
	a3.subscribe(1, "#", 0)
	a3.quiet(50 * time.Millisecond) // secret/x is retained but not readable
}

// Reload re-reads real Mosquitto files; a broken file keeps the old ones.
func TestReloadKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if err := auth.SetPassword(pw, "admin", []byte("password"), auth.HashOptions{Iterations: 1000}, true); err != nil {
		t.Fatal(err)
	}
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("user admin\ntopic readwrite #\n"), 0o600)
	no := false
	b := testBroker(t, Config{AllowAnonymous: &no, PasswordFile: pw, ACLFile: acl}, Options{})
	if ack := dialRaw(t, addr(b), packet.V311).connect("x", true, creds("admin", "password")); ack.ReasonCode != 0 {
		t.Fatalf("code %d", ack.ReasonCode)
	}
	os.WriteFile(pw, []byte("admin:$7$broken\n"), 0o600)
	if err := b.Reload(); err == nil || !strings.Contains(err.Error(), "passwd") {
		t.Fatalf("Reload = %v, want an error naming the file", err)
	}
	if ack := dialRaw(t, addr(b), packet.V311).connect("y", true, creds("admin", "password")); ack.ReasonCode != 0 {
		t.Fatalf("after failed reload: code %d", ack.ReasonCode)
	}
}
