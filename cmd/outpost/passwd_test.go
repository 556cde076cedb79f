package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/auth"
)

// runPasswdCmd runs `outpost passwd args...` with stdin and returns the
// error and what it printed.
func runPasswdCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newPasswdCmd()
	var out bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.String(), err
}

func loadPW(t *testing.T, path string) *auth.Passwords {
	t.Helper()
	p, err := auth.LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswdCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")

	// -c with the password typed twice (stdin is not a terminal here).
	out, err := runPasswdCmd(t, "s3cret\ns3cret\n", "-c", path, "alice")
	if err != nil {
		t.Fatalf("-c: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Password: ") || !strings.Contains(out, "Reenter password: ") {
		t.Fatalf("no prompts: %q", out)
	}
	// -b, a password that starts with '-', and -I.
	if _, err := runPasswdCmd(t, "", "-b", path, "bob", "-dash pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := runPasswdCmd(t, "", "-I", "100000", "-b", path, "carol", "slow"); err != nil {
		t.Fatal(err)
	}
	if _, err := runPasswdCmd(t, "", "-H", "sha512", "-b", path, "dave", "old"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, prefix := range []string{"alice:$7$101$", "bob:$7$101$", "carol:$7$100000$", "dave:$6$"} {
		if !strings.Contains(string(b), prefix) {
			t.Errorf("file lacks %q:\n%s", prefix, b)
		}
	}
	p := loadPW(t, path)
	if !p.Check("alice", []byte("s3cret")) || !p.Check("bob", []byte("-dash pw")) || !p.Check("carol", []byte("slow")) || !p.Check("dave", []byte("old")) {
		t.Fatal("a password written by outpost passwd does not verify")
	}

	// The real mosquitto_passwd reads and extends our file, and we read its additions.
	if mp, err := exec.LookPath("mosquitto_passwd"); err == nil {
		if out, err := exec.Command(mp, "-b", path, "erin", "from-mosquitto").CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd on our file: %v\n%s", err, out)
		}
		p := loadPW(t, path)
		if !p.Check("erin", []byte("from-mosquitto")) || !p.Check("alice", []byte("s3cret")) {
			t.Fatal("file shared with mosquitto_passwd lost a user")
		}
	}

	// Mismatched prompts and empty passwords change nothing.
	before, _ := os.ReadFile(path)
	if _, err := runPasswdCmd(t, "one\ntwo\n", path, "alice"); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := runPasswdCmd(t, "\n\n", path, "alice"); err == nil || !strings.Contains(err.Error(), "empty password") {
		t.Fatalf("empty: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused change modified the file")
	}

	// -D.
	if _, err := runPasswdCmd(t, "", "-D", path, "bob"); err != nil {
		t.Fatal(err)
	}
	if loadPW(t, path).Check("bob", []byte("-dash pw")) {
		t.Fatal("-D left bob in place")
	}
	if _, err := runPasswdCmd(t, "", "-D", path, "bob"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("-D of a missing user: %v", err)
	}

	// -U hashes plain-text lines only.
	plain := filepath.Join(t.TempDir(), "plain")
	h, _ := auth.HashPassword([]byte("kept"), auth.HashOptions{})
	os.WriteFile(plain, []byte("# plain\nfrank:pw1\ngina:"+h+"\n"), 0o600)
	if _, err := runPasswdCmd(t, "", "-U", plain); err != nil {
		t.Fatal(err)
	}
	pp := loadPW(t, plain)
	if !pp.Check("frank", []byte("pw1")) || !pp.Check("gina", []byte("kept")) {
		t.Fatal("-U did not hash frank or rehashed gina")
	}
}

func TestPasswdCommandUsageErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "-D", path, "u"}, "-c and -D"},
		{[]string{"-c", "-U", path}, "-c and -U"},
		{[]string{"-D", "-b", path, "u"}, "-b and -D"},
		{[]string{"-b", path, "u"}, "usage"},
		{[]string{path}, "usage"},
		{[]string{"-U"}, "usage"},
		{[]string{"-I", "0", "-b", path, "u", "p"}, "iterations must be > 0"},
		{[]string{"-H", "md5", "-b", path, "u", "p"}, "unknown hash type"},
		{[]string{"-b", path, "a:b", "p"}, "':'"},
		{[]string{"-b", path, "u", "p"}, "-c creates one"}, // file does not exist yet
	} {
		if _, err := runPasswdCmd(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("outpost passwd %v: err = %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a refused command created the file")
	}
}
