package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Passwords is a loaded password file. Check is safe for concurrent use.
// A nil *Passwords knows no users: Check returns false.
type Passwords struct {
	path  string
	users map[string]hashEntry
	cache *verifyCache
}

// LoadPasswords reads a mosquitto password_file: one "username:hash" per
// line, hash as written by mosquitto_passwd ($7$ or $6$). Blank lines and
// lines starting with '#' are skipped; blanks around the username and
// hash are trimmed, as mosquitto does.
//
// Mosquitto logs a bad entry and drops it; we refuse the whole file with
// an error naming the file, the line and the problem, so a typo cannot
// silently lock a device out (or, on reload, the old file stays in force).
func LoadPasswords(path string) (*Passwords, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load password file: %w", err)
	}
	p := &Passwords{path: path, users: make(map[string]hashEntry), cache: newVerifyCache()}
	firstLine := make(map[string]int)
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		line = strings.TrimRight(line, " \t\r")
		if t := strings.TrimLeft(line, " \t"); t == "" || t[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("load password file: %w", lineErr(path, n, "no ':' between username and password hash (truncated line?)"))
		}
		user = strings.Trim(user, " \t")
		hash = strings.Trim(hash, " \t")
		if user == "" {
			return nil, fmt.Errorf("load password file: %w", lineErr(path, n, "empty username"))
		}
		if hash == "" {
			return nil, fmt.Errorf("load password file: %w", lineErr(path, n, "user %q: empty password hash", user))
		}
		if strings.Contains(hash, ":") {
			return nil, fmt.Errorf("load password file: %w", lineErr(path, n, "user %q: more than one ':' (usernames and hashes cannot contain ':')", user))
		}
		e, problem := parseHash(hash)
		if problem != "" {
			return nil, fmt.Errorf("load password file: %w", lineErr(path, n, "user %q: %s", user, problem))
		}
		if prev, dup := firstLine[user]; dup {
			return nil, fmt.Errorf("load password file: %w", lineErr(path, n, "user %q is already defined on line %d", user, prev))
		}
		firstLine[user] = n
		p.users[user] = e
	}
	return p, nil
}

// Path is the file p was loaded from.
func (p *Passwords) Path() string { return p.path }

// Len is the number of users in the file.
func (p *Passwords) Len() int {
	if p == nil {
		return 0
	}
	return len(p.users)
}

// dummy is verified for an unknown username so that the time taken does
// not tell whether the user exists.
var dummy = hashEntry{typ: SHA512PBKDF2, iterations: DefaultIterations, salt: make([]byte, saltLen), hash: make([]byte, hashLen)}

// Check reports whether password is the password of username. The hash is
// compared in constant time. A nil password (CONNECT without the password
// flag) never matches, as in mosquitto.
//
// Results are cached per (username, password) in a bounded in-memory
// cache keyed by an HMAC under a per-load random key, so a reconnect storm
// of devices with the same credentials costs one hash per distinct
// credential rather than one per connection; concurrent checks of the same
// credential wait for one computation. A reload (new *Passwords) starts
// with an empty cache, so a changed password takes effect at once.
func (p *Passwords) Check(username string, password []byte) bool {
	if p == nil || password == nil {
		return false
	}
	return p.cache.do(username, password, func() bool {
		e, ok := p.users[username]
		if !ok {
			dummy.verify(password)
			return false
		}
		return e.verify(password)
	})
}

// verifyCacheSize bounds the cache: at 32-byte keys this is ~100 KiB with
// map overhead, small next to the cost of one reconnect storm.
const verifyCacheSize = 1024

// verifyCache memoises verification results.
type verifyCache struct {
	key      []byte
	mu       sync.Mutex
	results  map[[32]byte]bool
	ring     [][32]byte // insertion order, for FIFO eviction
	next     int
	inflight map[[32]byte]*verifyCall
}

type verifyCall struct {
	done chan struct{}
	ok   bool
}

func newVerifyCache() *verifyCache {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand.Read panics rather than return an error)
	return &verifyCache{
		key:      key,
		results:  make(map[[32]byte]bool),
		ring:     make([][32]byte, 0, verifyCacheSize),
		inflight: make(map[[32]byte]*verifyCall),
	}
}

func (c *verifyCache) keyOf(username string, password []byte) [32]byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(username))
	m.Write([]byte{0}) // usernames hold no NUL [MQTT-1.5.4-2]
	m.Write(password)
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// do returns the cached result for the credential or runs verify once.
func (c *verifyCache) do(username string, password []byte, verify func() bool) bool {
	k := c.keyOf(username, password)
	c.mu.Lock()
	if ok, hit := c.results[k]; hit {
		c.mu.Unlock()
		return ok
	}
	if call, busy := c.inflight[k]; busy {
		c.mu.Unlock()
		<-call.done
		return call.ok
	}
	call := &verifyCall{done: make(chan struct{})}
	c.inflight[k] = call
	c.mu.Unlock()

	call.ok = verify()

	c.mu.Lock()
	delete(c.inflight, k)
	if len(c.ring) < verifyCacheSize {
		c.ring = append(c.ring, k)
	} else {
		delete(c.results, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % verifyCacheSize
	}
	c.results[k] = call.ok
	c.mu.Unlock()
	close(call.done)
	return call.ok
}

// len is the number of cached results (for tests).
func (c *verifyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.results)
}
