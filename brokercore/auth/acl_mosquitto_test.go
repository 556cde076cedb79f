package auth

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// The ACL file every differential case runs against, in a real mosquitto
// 2.0 and in our Allow. User spy and the "$marker" and "$done" rules exist
// only to observe outcomes without timeouts: nothing else in the file can
// match a "$marker" or "$done" topic.
const diffACL = `# anonymous clients
topic read $marker/#
topic read pub/#
topic write anon/in
topic deny pub/secret

user alice
topic readwrite a/#
topic deny a/private/#
topic read shared/#
topic read $x/alice/#

user bob
topic write b/+/cmd
topic readwrite +/bob
topic deny x/bob

user hash
topic read #

user m+n
topic read $marker/#

user spy
topic readwrite #
topic readwrite $x/#
topic readwrite $done/#
topic readwrite $marker/#

pattern readwrite dev/%c/#
pattern deny dev/%c/keys
pattern deny shared/locked
pattern write out/%u/#
pattern read open/#
pattern read $marker/%c
`

// mqttSub is a running mosquitto_sub printing "topic payload" lines.
type mqttSub struct {
	lines chan string
	stop  func() // ends the process and waits for it
}

func startSub(t *testing.T, port int, user, clientID string, topics ...string) *mqttSub {
	t.Helper()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-i", clientID, "-q", "1", "-v", "-d"}
	if user != "" {
		args = append(args, "-u", user, "-P", "pw-"+user)
	}
	for _, tp := range topics {
		args = append(args, "-t", tp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// mosquitto_sub's debug lines are block-buffered into a pipe; stdbuf
	// (coreutils) makes them line-buffered.
	bin := needTool(t, "mosquitto_sub")
	if sb, err := exec.LookPath("stdbuf"); err == nil {
		args = append([]string{"-oL", bin}, args...)
		bin = sb
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &mqttSub{lines: make(chan string, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	var once sync.Once
	s.stop = func() { once.Do(func() { cancel(); <-done; cmd.Wait() }) }
	t.Cleanup(s.stop)
	s.until(t, "Subscribed (mid:")
	return s
}

// until reads lines up to one starting with prefix and returns those
// before it.
func (s *mqttSub) until(t *testing.T, prefix string) []string {
	t.Helper()
	var seen []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("mosquitto_sub exited before %q; saw %q", prefix, seen)
			}
			if strings.HasPrefix(l, prefix) {
				return seen
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("no %q from mosquitto_sub within 10s; saw %q", prefix, seen)
		}
	}
}

func pub(t *testing.T, port int, user, clientID, topic, payload string) {
	t.Helper()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-i", clientID, "-q", "1", "-t", topic, "-m", payload}
	if user != "" {
		args = append(args, "-u", user, "-P", "pw-"+user)
	}
	// QoS 1: mosquitto has routed (or dropped) the message before the
	// PUBACK that ends mosquitto_pub.
	if out, err := exec.Command(needTool(t, "mosquitto_pub"), args...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// Our Allow decides like a real mosquitto 2.0 on every rule of its
// evaluation, observed through real clients.
func TestACLMatchesMosquitto(t *testing.T) {
	needTool(t, "mosquitto_sub")
	needTool(t, "mosquitto_pub")
	dir := t.TempDir()
	aclPath := filepath.Join(dir, "acl")
	writeFileT(t, aclPath, diffACL)
	pwPath := filepath.Join(dir, "passwd")
	for i, u := range []string{"alice", "bob", "hash", "spy", "carol", "m+n"} {
		must(t, SetPassword(pwPath, u, []byte("pw-"+u), HashOptions{}, i == 0))
	}
	a, err := LoadACL(aclPath)
	must(t, err)
	port := mosquittotest.Start(t, mosquittotest.Options{AllowAnonymous: true, PasswordFile: pwPath, ACLFile: aclPath}).Port()

	cases := []struct {
		client, user, topic string
		access              Access
		want                bool
	}{
		{"anon1", "", "pub/x", Read, true},
		{"anon1", "", "pub/secret", Read, false},
		{"anon1", "", "anon/in", Read, false},
		{"anon1", "", "anon/in", Write, true},
		{"anon1", "", "pub/x", Write, false},
		{"alice1", "alice", "a/1", Read, true},
		{"alice1", "alice", "a/1", Write, true},
		{"alice1", "alice", "a/private/1", Read, false},
		{"alice1", "alice", "a/private/1", Write, false},
		{"alice1", "alice", "pub/x", Read, false},        // users do not get the anonymous lines
		{"alice1", "alice", "shared/locked", Read, true}, // user grant decided before the pattern deny
		{"bob1", "bob", "shared/locked", Read, false},    // pattern deny
		{"alice1", "alice", "$x/alice/1", Read, true},    // $ rule with a $ rule
		{"hash1", "hash", "$x/alice/1", Read, false},     // '#' does not reach $ topics
		{"hash1", "hash", "any/thing", Read, true},
		{"bob1", "bob", "b/1/cmd", Write, true},
		{"bob1", "bob", "b/1/cmd", Read, false},
		{"bob1", "bob", "x/bob", Write, false}, // deny written after the allow
		{"bob1", "bob", "y/bob", Read, true},
		{"carolc", "carol", "dev/carolc/1", Write, true}, // user without a block: patterns
		{"carolc", "carol", "dev/carolc/keys", Write, false},
		{"carolc", "carol", "dev/other/1", Read, false},
		{"carolc", "carol", "out/carol/1", Write, true},
		{"carolc", "carol", "out/dave/1", Write, false},
		{"anonc", "", "dev/anonc/1", Read, true}, // %c works for anonymous clients
		{"anonc", "", "out//1", Write, false},    // %u patterns skipped for anonymous
		{"cd", "", "open/1", Read, true},
		{"mn1", "m+n", "open/1", Read, false}, // wildcard in username: no patterns
	}
	spy := startSub(t, port, "spy", "spy-observer", "#", "$x/#", "$done/#")
	for i, c := range cases {
		name := fmt.Sprintf("%s/%s/%s/%v", c.client, c.user, c.topic, c.access)
		payload := "p" + strconv.Itoa(i)
		var got bool
		switch c.access {
		case Write:
			pub(t, port, c.user, c.client, c.topic, payload)
			pub(t, port, "spy", "spy-pub", "$done/"+strconv.Itoa(i), "done")
			seen := spy.until(t, "$done/"+strconv.Itoa(i)+" done")
			got = contains(seen, c.topic+" "+payload)
		case Read:
			s := startSub(t, port, c.user, c.client, c.topic, "$marker/"+c.client)
			pub(t, port, "spy", "spy-pub", c.topic, payload)
			pub(t, port, "spy", "spy-pub", "$marker/"+c.client, "mark")
			seen := s.until(t, "$marker/"+c.client+" mark")
			s.stop() // before the next case reuses the client id
			got = contains(seen, c.topic+" "+payload)
			// Keep the observer's queue in step with the spy's publishes.
			pub(t, port, "spy", "spy-pub", "$done/"+strconv.Itoa(i), "done")
			spy.until(t, "$done/"+strconv.Itoa(i)+" done")
		}
		if got != c.want {
			t.Errorf("%s: mosquitto says %v, the test expected %v", name, got, c.want)
		}
		if ours := a.Allow(c.client, c.user, c.topic, c.access); ours != got {
			t.Errorf("%s: Allow = %v, mosquitto %v", name, ours, got)
		}
	}
}

func writeFileT(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
