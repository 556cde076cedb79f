package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// The functions here are `outpost passwd`: they edit a password file the
// way mosquitto_passwd does, with two differences: the file is replaced
// atomically (temporary file, fsync, rename, keeping its mode and owner)
// instead of rewritten in place, and comments and blank lines survive.

// ErrUserNotFound is returned by DeleteUser for a username not in the file.
var ErrUserNotFound = errors.New("user not found")

// ValidUsername applies mosquitto_passwd's rules: non-empty, at most 65535
// bytes, no control characters, no ':'.
func ValidUsername(username string) error {
	switch {
	case username == "":
		return errors.New("username is empty")
	case len(username) > 65535:
		return errors.New("username must be less than 65536 characters long")
	case strings.ContainsRune(username, ':'):
		return fmt.Errorf("username %q must not contain the ':' character", username)
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		return fmt.Errorf("username %q must not contain control characters", username)
	}
	return nil
}

// pwLine is one line of a password file being edited.
type pwLine struct {
	text string // the line without its newline, kept verbatim
	user string // "" for a comment or blank line
	hash string // trimmed text after ':'
}

func readForEdit(path string) ([]pwLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	var lines []pwLine
	for i, text := range strings.Split(s, "\n") {
		l := pwLine{text: strings.TrimRight(text, "\r")}
		if t := strings.TrimSpace(l.text); t != "" && t[0] != '#' {
			user, hash, ok := strings.Cut(t, ":")
			user, hash = strings.TrimSpace(user), strings.TrimSpace(hash)
			if !ok || user == "" || hash == "" {
				return nil, lineErr(path, i+1, "corrupt line: want username:password")
			}
			l.user, l.hash = user, hash
		}
		lines = append(lines, l)
	}
	return lines, nil
}

func entryLine(user, hash string) pwLine {
	return pwLine{text: user + ":" + hash, user: user, hash: hash}
}

// SetPassword adds username with password to the password file at path, or
// replaces its hash. With create, the file is (re)written with this user
// only, as `mosquitto_passwd -c`; without it the file must exist.
func SetPassword(path, username string, password []byte, opts HashOptions, create bool) error {
	if err := ValidUsername(username); err != nil {
		return fmt.Errorf("set password in %s: %w", path, err)
	}
	hash, err := HashPassword(password, opts)
	if err != nil {
		return fmt.Errorf("set password in %s: %w", path, err)
	}
	var lines []pwLine
	if !create {
		if lines, err = readForEdit(path); err != nil {
			return fmt.Errorf("set password in %s: %w", path, err)
		}
	}
	found := false
	for i := range lines {
		if lines[i].user == username {
			lines[i] = entryLine(username, hash)
			found = true
		}
	}
	if !found {
		lines = append(lines, entryLine(username, hash))
	}
	if err := writeAtomic(path, lines); err != nil {
		return fmt.Errorf("set password in %s: %w", path, err)
	}
	return nil
}

// DeleteUser removes username from the password file, as
// `mosquitto_passwd -D`. It returns an error wrapping ErrUserNotFound if
// the user is not there (the file is then left alone).
func DeleteUser(path, username string) error {
	lines, err := readForEdit(path)
	if err != nil {
		return fmt.Errorf("delete user from %s: %w", path, err)
	}
	kept := lines[:0]
	found := false
	for _, l := range lines {
		if l.user == username {
			found = true
			continue
		}
		kept = append(kept, l)
	}
	if !found {
		return fmt.Errorf("delete user %q from %s: %w", username, path, ErrUserNotFound)
	}
	if err := writeAtomic(path, kept); err != nil {
		return fmt.Errorf("delete user from %s: %w", path, err)
	}
	return nil
}

// HashPlainFile replaces every plain-text password in the file with its
// hash, as `mosquitto_passwd -U`, and returns how many it hashed. Entries
// already hashed ($6$ or $7$) are left alone; mosquitto_passwd would hash
// them a second time and lock those users out.
func HashPlainFile(path string, opts HashOptions) (int, error) {
	lines, err := readForEdit(path)
	if err != nil {
		return 0, fmt.Errorf("hash plain passwords in %s: %w", path, err)
	}
	n := 0
	for i, l := range lines {
		if l.user == "" || strings.HasPrefix(l.hash, "$6$") || strings.HasPrefix(l.hash, "$7$") {
			continue
		}
		if err := ValidUsername(l.user); err != nil {
			return 0, fmt.Errorf("hash plain passwords in %s: %w", path, lineErr(path, i+1, "%v", err))
		}
		h, err := HashPassword([]byte(l.hash), opts)
		if err != nil {
			return 0, fmt.Errorf("hash plain passwords in %s: %w", path, err)
		}
		lines[i] = entryLine(l.user, h)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := writeAtomic(path, lines); err != nil {
		return 0, fmt.Errorf("hash plain passwords in %s: %w", path, err)
	}
	return n, nil
}

// writeAtomic replaces path with lines: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced, so a
// power cut leaves the old file or the new one. A new file is mode 0600
// (mosquitto_passwd's umask 077); an existing file keeps its mode and, when
// we may, its owner, so a broker running as its own user can still read it.
func writeAtomic(path string, lines []pwLine) error {
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(l.text)
		sb.WriteByte('\n')
	}
	mode := fs.FileMode(0o600)
	old, statErr := os.Stat(path)
	if statErr == nil {
		mode = old.Mode().Perm()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.WriteString(sb.String()); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if statErr == nil {
		copyOwner(tmp, old)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
