package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// Files written by the real mosquitto_passwd verify with Check.
func TestCheckMosquittoPasswdFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	runTool(t, "mosquitto_passwd", "-c", "-b", path, "alice", "s3cret")
	runTool(t, "mosquitto_passwd", "-b", path, "bob", "p@ss:with colon")
	runTool(t, "mosquitto_passwd", "-I", "100000", "-b", path, "carol", "slow one")
	runTool(t, "mosquitto_passwd", "-H", "sha512", "-b", path, "dave", "old-style")
	runTool(t, "mosquitto_passwd", "-b", path, "émile", "ünïcode")

	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 5 {
		t.Fatalf("Len = %d, want 5", p.Len())
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "carol:$7$100000$") || !strings.Contains(string(b), "dave:$6$") {
		t.Fatalf("mosquitto_passwd did not write the formats under test:\n%s", b)
	}
	for _, c := range []struct {
		user, pw string
		want     bool
	}{
		{"alice", "s3cret", true},
		{"alice", "s3cret ", false},
		{"alice", "S3cret", false},
		{"bob", "p@ss:with colon", true},
		{"bob", "p@ss", false},
		{"carol", "slow one", true},
		{"carol", "slow", false},
		{"dave", "old-style", true},
		{"dave", "old-styl", false},
		{"émile", "ünïcode", true},
		{"nobody", "s3cret", false},
		{"Alice", "s3cret", false},
		{"alice", "", false},
	} {
		if got := p.Check(c.user, []byte(c.pw)); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pw, got, c.want)
		}
		// Again, now from the cache.
		if got := p.Check(c.user, []byte(c.pw)); got != c.want {
			t.Errorf("cached Check(%q, %q) = %v, want %v", c.user, c.pw, got, c.want)
		}
	}
	if p.Check("alice", nil) {
		t.Error("Check with nil password (no password flag) = true")
	}
	var nilP *Passwords
	if nilP.Check("alice", []byte("s3cret")) {
		t.Error("nil *Passwords accepted a login")
	}
}

// Files written by our SetPassword are accepted by a real mosquitto: the
// right password connects, a wrong one is refused.
func TestMosquittoAcceptsOurFile(t *testing.T) {
	needTool(t, "mosquitto_pub")
	path := filepath.Join(t.TempDir(), "passwd")
	if err := SetPassword(path, "alice", []byte("s3cret"), HashOptions{}, true); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "carol", []byte("slow one"), HashOptions{Iterations: 100000}, false); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "dave", []byte("old-style"), HashOptions{Type: SHA512}, false); err != nil {
		t.Fatal(err)
	}
	port := mosquittotest.Start(t, mosquittotest.Options{PasswordFile: path, Extra: []string{"allow_anonymous false"}}).Port()
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "s3cret", true},
		{"alice", "wrong", false},
		{"carol", "slow one", true},
		{"carol", "slow", false},
		{"dave", "old-style", true},
		{"dave", "new-style", false},
		{"mallory", "s3cret", false},
	} {
		err := mosquittoPub(t, port, c.user, c.pw)
		if (err == nil) != c.ok {
			t.Errorf("mosquitto_pub -u %s -P %s: err = %v, want ok=%v", c.user, c.pw, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "not authorised") {
			t.Errorf("mosquitto_pub -u %s: want a not-authorised refusal, got %v", c.user, err)
		}
	}
}

func TestLoadPasswordsErrors(t *testing.T) {
	good, err := HashPassword([]byte("x"), HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good6, _ := HashPassword([]byte("x"), HashOptions{Type: SHA512})
	cases := []struct {
		name, file string
		line       int
		want       string
	}{
		{"truncated hash", "a:" + good + "\nb:" + good[:60] + "\n", 2, "truncated line"},
		{"truncated before salt", "a:" + good + "\nb:$7$101$\n", 2, "truncated line"},
		{"no colon", "# users\n\nalice\n", 3, "no ':'"},
		{"plain text", "a:" + good + "\nb:hunter2\n", 2, "outpost passwd -U"},
		{"unknown type", "a:$5$abc$def\n", 1, "unknown hash type $5$"},
		{"bad iterations", "a:" + strings.Replace(good, "$101$", "$zero$", 1) + "\n", 1, "iterations"},
		{"short salt", "a:$6$AAAA$" + good6[strings.LastIndex(good6, "$")+1:] + "\n", 1, "salt is 3 bytes, want 12"},
		{"bad base64", "a:$6$!!!!$abcd\n", 1, "not base64"},
		{"empty user", ":" + good + "\n", 1, "empty username"},
		{"empty hash", "a:\n", 1, "empty password hash"},
		{"duplicate", "a:" + good + "\n#\na:" + good6 + "\n", 3, "already defined on line 1"},
		{"extra colon", "a:" + good + ":x\n", 1, "more than one ':'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "passwd")
			os.WriteFile(path, []byte(c.file), 0o600)
			_, err := LoadPasswords(path)
			if err == nil {
				t.Fatalf("LoadPasswords accepted:\n%s", c.file)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != path || fe.Line != c.line {
				t.Fatalf("error %v: want a FileError at %s:%d", err, path, c.line)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%s:%d:", path, c.line)) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want %s:%d and %q", err, path, c.line, c.want)
			}
		})
	}
	if _, err := LoadPasswords(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestLoadPasswordsTolerates(t *testing.T) {
	h, _ := HashPassword([]byte("pw"), HashOptions{})
	path := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(path, []byte("# comment\r\n\r\n  alice : "+h+"  \r\n"+"bob:"+h), 0o600) // CRLF, blanks, no final newline
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Check("alice", []byte("pw")) || !p.Check("bob", []byte("pw")) || p.Len() != 2 {
		t.Fatalf("alice/bob not loaded from a CRLF file with blanks")
	}
}

func TestHashPasswordFormat(t *testing.T) {
	for _, o := range []HashOptions{{}, {Iterations: 1000}, {Type: SHA512}} {
		s, err := HashPassword([]byte("pw"), o)
		if err != nil {
			t.Fatal(err)
		}
		e, problem := parseHash(s)
		if problem != "" {
			t.Fatalf("%s: %s", s, problem)
		}
		if !e.verify([]byte("pw")) || e.verify([]byte("pW")) {
			t.Fatalf("%s does not verify", s)
		}
		if e.String() != s {
			t.Fatalf("round trip %s -> %s", s, e.String())
		}
		// 12-byte salt and 64-byte hash, base64 with padding, as mosquitto_passwd.
		if f := strings.Split(s, "$"); len(f[len(f)-2]) != 16 || len(f[len(f)-1]) != 88 {
			t.Fatalf("%s: salt/hash lengths %d/%d, want 16/88", s, len(f[len(f)-2]), len(f[len(f)-1]))
		}
	}
	if s, _ := HashPassword([]byte("pw"), HashOptions{}); !strings.HasPrefix(s, "$7$101$") {
		t.Fatalf("default hash %s, want $7$101$", s)
	}
	if _, err := HashPassword([]byte("pw"), HashOptions{Iterations: -1}); err == nil {
		t.Fatal("negative iterations accepted")
	}
	if _, err := HashPassword([]byte("pw"), HashOptions{Type: 5}); err == nil {
		t.Fatal("hash type 5 accepted")
	}
}

func TestEditPasswordFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	if err := SetPassword(path, "alice", []byte("one"), HashOptions{}, false); err == nil {
		t.Fatal("SetPassword without create on a missing file succeeded")
	}
	if err := SetPassword(path, "alice", []byte("one"), HashOptions{}, true); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	os.Chmod(path, 0o640)
	// A comment survives edits.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("# site users\n"), b...), 0o640)
	must(t, SetPassword(path, "bob", []byte("two"), HashOptions{}, false))
	must(t, SetPassword(path, "alice", []byte("three"), HashOptions{}, false))
	p, err := LoadPasswords(path)
	must(t, err)
	if !p.Check("alice", []byte("three")) || p.Check("alice", []byte("one")) || !p.Check("bob", []byte("two")) || p.Len() != 2 {
		t.Fatal("update did not replace alice's password in place")
	}
	b, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# site users\nalice:") {
		t.Fatalf("comment or order lost:\n%s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode after edit %v, want 0640 kept", fi.Mode().Perm())
	}
	must(t, DeleteUser(path, "alice"))
	if err := DeleteUser(path, "alice"); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("deleting a missing user: %v", err)
	}
	p, _ = LoadPasswords(path)
	if p.Len() != 1 || !p.Check("bob", []byte("two")) {
		t.Fatal("delete removed the wrong user")
	}
	// -U: plain text hashed, hashed entries untouched.
	b, _ = os.ReadFile(path)
	os.WriteFile(path, append(b, "carol:plain pw\ndave:x\n"...), 0o640)
	n, err := HashPlainFile(path, HashOptions{Iterations: 200})
	must(t, err)
	if n != 2 {
		t.Fatalf("HashPlainFile hashed %d, want 2", n)
	}
	p, err = LoadPasswords(path)
	must(t, err)
	if !p.Check("bob", []byte("two")) || !p.Check("carol", []byte("plain pw")) || !p.Check("dave", []byte("x")) {
		t.Fatal("HashPlainFile lost or double-hashed a password")
	}
	for _, bad := range []string{"", "a:b", "tab\there"} {
		if err := SetPassword(path, bad, []byte("x"), HashOptions{}, false); err == nil {
			t.Errorf("username %q accepted", bad)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestVerifyCache(t *testing.T) {
	c := newVerifyCache()
	var calls atomic.Int32
	verify := func() bool { calls.Add(1); return true }

	// A storm of the same credential costs one verification.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if !c.do("alice", []byte("pw"), verify) {
				t.Error("cached result false")
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("50 concurrent checks ran %d verifications, want 1", n)
	}
	// A different password or user is a different entry.
	c.do("alice", []byte("pw2"), func() bool { return false })
	if c.do("alice", []byte("pw2"), verify) {
		t.Fatal("negative result not kept")
	}
	c.do("alicepw", []byte(""), verify) // not confused with alice+"pw"
	if n := calls.Load(); n != 2 {
		t.Fatalf("verifications = %d, want 2", n)
	}
	// Bounded.
	for i := range verifyCacheSize + 100 {
		c.do(fmt.Sprint("u", i), []byte("pw"), verify)
	}
	if n := c.len(); n != verifyCacheSize {
		t.Fatalf("cache holds %d, want the bound %d", n, verifyCacheSize)
	}
}

// A reload is a new *Passwords: a changed password takes effect even for
// a credential cached before.
func TestCacheDoesNotOutliveReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	must(t, SetPassword(path, "alice", []byte("old"), HashOptions{}, true))
	p1, _ := LoadPasswords(path)
	if !p1.Check("alice", []byte("old")) {
		t.Fatal("old password refused")
	}
	must(t, SetPassword(path, "alice", []byte("new"), HashOptions{}, false))
	p2, _ := LoadPasswords(path)
	if p2.Check("alice", []byte("old")) || !p2.Check("alice", []byte("new")) {
		t.Fatal("reloaded file still accepts the old password")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCheck measures one uncached verification (a new connection's
// cost) and one cached one (a reconnect storm's).
func BenchmarkCheck(b *testing.B) {
	for _, o := range []struct {
		name string
		opts HashOptions
	}{
		{"sha512", HashOptions{Type: SHA512}},
		{"pbkdf2-101", HashOptions{}},
		{"pbkdf2-100000", HashOptions{Iterations: 100000}},
	} {
		s, err := HashPassword([]byte("s3cret"), o.opts)
		if err != nil {
			b.Fatal(err)
		}
		e, _ := parseHash(s)
		b.Run(o.name+"/uncached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !e.verify([]byte("s3cret")) {
					b.Fatal("no match")
				}
			}
		})
		p := &Passwords{users: map[string]hashEntry{"alice": e}, cache: newVerifyCache()}
		b.Run(o.name+"/cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !p.Check("alice", []byte("s3cret")) {
					b.Fatal("no match")
				}
			}
		})
	}
}
