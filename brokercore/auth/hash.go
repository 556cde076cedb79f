package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// HashType is the algorithm of a password file entry; its value is the
// number between the first two '$' (mosquitto's enum mosquitto_pwhash_type).
type HashType int

const (
	// SHA512 is "$6$<salt>$<hash>": SHA-512 over password then salt
	// (the mosquitto_passwd default before 2.0, `-H sha512`).
	SHA512 HashType = 6
	// SHA512PBKDF2 is "$7$<iterations>$<salt>$<hash>": PBKDF2-HMAC-SHA512
	// with a 64-byte key (the mosquitto_passwd default since 2.0).
	SHA512PBKDF2 HashType = 7
)

// DefaultIterations is mosquitto_passwd's PBKDF2 iteration count
// (PW_DEFAULT_ITERATIONS). It is low; `-I` raises it per entry, at a CPU
// cost on every uncached login (see BenchmarkCheck).
const DefaultIterations = 101

const (
	saltLen = 12 // mosquitto_passwd SALT_LEN; mosquitto rejects other lengths
	hashLen = 64 // SHA-512 output and the PBKDF2 key length
)

// hashEntry is one decoded password hash.
type hashEntry struct {
	typ        HashType
	iterations int // $7$ only
	salt       []byte
	hash       []byte
}

// HashOptions choose how a new password is hashed. The zero value is
// mosquitto_passwd's default: $7$ with 101 iterations.
type HashOptions struct {
	Type       HashType // 0 = SHA512PBKDF2
	Iterations int      // 0 = DefaultIterations; only for SHA512PBKDF2
}

// HashPassword returns the password-file form of password with a fresh
// random salt, e.g. "$7$101$<base64 salt>$<base64 hash>", the exact text
// mosquitto_passwd writes after "username:".
func HashPassword(password []byte, opts HashOptions) (string, error) {
	if opts.Type == 0 {
		opts.Type = SHA512PBKDF2
	}
	if opts.Iterations == 0 {
		opts.Iterations = DefaultIterations
	}
	if opts.Type != SHA512 && opts.Type != SHA512PBKDF2 {
		return "", fmt.Errorf("hash password: unknown hash type %d (want 6 or 7)", opts.Type)
	}
	if opts.Iterations < 1 {
		return "", fmt.Errorf("hash password: iterations %d must be > 0", opts.Iterations)
	}
	e := hashEntry{typ: opts.Type, iterations: opts.Iterations, salt: make([]byte, saltLen)}
	if _, err := rand.Read(e.salt); err != nil {
		return "", fmt.Errorf("hash password: salt: %w", err)
	}
	h, err := e.digest(password)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	e.hash = h
	return e.String(), nil
}

// String is the password-file text of e.
func (e *hashEntry) String() string {
	salt := base64.StdEncoding.EncodeToString(e.salt)
	hash := base64.StdEncoding.EncodeToString(e.hash)
	if e.typ == SHA512 {
		return "$6$" + salt + "$" + hash
	}
	return "$7$" + strconv.Itoa(e.iterations) + "$" + salt + "$" + hash
}

// digest computes the hash of password with e's type, salt and iterations.
func (e *hashEntry) digest(password []byte) ([]byte, error) {
	switch e.typ {
	case SHA512:
		h := sha512.New()
		h.Write(password)
		h.Write(e.salt)
		return h.Sum(nil), nil
	case SHA512PBKDF2:
		return pbkdf2.Key(sha512.New, string(password), e.salt, e.iterations, hashLen)
	}
	return nil, fmt.Errorf("unknown hash type %d", e.typ)
}

// verify reports whether password hashes to e.hash, comparing in constant
// time.
func (e *hashEntry) verify(password []byte) bool {
	h, err := e.digest(password)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(h, e.hash) == 1
}

// parseHash decodes the text after "username:". The returned problem
// (empty when ok) is a sentence for a FileError.
func parseHash(s string) (hashEntry, string) {
	if !strings.HasPrefix(s, "$") {
		return hashEntry{}, "password is not hashed (plain text?); hash the file with `outpost passwd -U <file>`"
	}
	f := strings.Split(s[1:], "$")
	var e hashEntry
	switch f[0] {
	case "6":
		e.typ = SHA512
		if len(f) != 3 {
			return e, fmt.Sprintf("$6$ hash has %d fields, want $6$<salt>$<hash> (truncated line?)", len(f)-1)
		}
		f = f[1:]
	case "7":
		e.typ = SHA512PBKDF2
		if len(f) != 4 {
			return e, fmt.Sprintf("$7$ hash has %d fields, want $7$<iterations>$<salt>$<hash> (truncated line?)", len(f)-1)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 {
			return e, fmt.Sprintf("$7$ iterations %q is not a number > 0", f[1])
		}
		e.iterations = n
		f = f[2:]
	default:
		return e, fmt.Sprintf("unknown hash type $%s$ (want $6$ or $7$)", f[0])
	}
	var err error
	if e.salt, err = base64.StdEncoding.DecodeString(f[0]); err != nil {
		return e, fmt.Sprintf("salt %q is not base64: %v", f[0], err)
	}
	if len(e.salt) != saltLen {
		return e, fmt.Sprintf("salt is %d bytes, want %d", len(e.salt), saltLen)
	}
	if e.hash, err = base64.StdEncoding.DecodeString(f[1]); err != nil {
		return e, fmt.Sprintf("hash is not base64 (truncated line?): %v", err)
	}
	if len(e.hash) != hashLen {
		return e, fmt.Sprintf("hash is %d bytes, want %d (truncated line?)", len(e.hash), hashLen)
	}
	return e, ""
}
