package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/topic"
)

func writeACL(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadACL(t *testing.T, text string) *ACL {
	t.Helper()
	a, err := LoadACL(writeACL(t, text))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type aclCase struct {
	client, user, topic string
	access              Access
	want                bool
}

func checkACL(t *testing.T, a *ACL, cases []aclCase) {
	t.Helper()
	for _, c := range cases {
		if got := a.Allow(c.client, c.user, c.topic, c.access); got != c.want {
			t.Errorf("Allow(client %q, user %q, %q, %v) = %v, want %v", c.client, c.user, c.topic, c.access, got, c.want)
		}
	}
}

// One test per rule of mosquitto 2.0's acl_check_default.
func TestACLEvaluation(t *testing.T) {
	t.Run("anonymous block is for anonymous clients only", func(t *testing.T) {
		a := loadACL(t, "# anonymous\ntopic read public/#\n\nuser alice\ntopic alice/#\n")
		checkACL(t, a, []aclCase{
			{"c", "", "public/x", Read, true},
			{"c", "", "public/x", Write, false},
			{"c", "", "alice/x", Read, false},
			{"c", "alice", "public/x", Read, false}, // a user does not inherit the anonymous lines
			{"c", "alice", "alice/x", Write, true},
			{"c", "bob", "alice/x", Read, false}, // no block, no patterns: nothing
		})
	})
	t.Run("access words and default readwrite", func(t *testing.T) {
		a := loadACL(t, "user u\ntopic r/#\ntopic read ro\ntopic write wo\ntopic readwrite rw\n")
		checkACL(t, a, []aclCase{
			{"c", "u", "r/1", Read, true}, {"c", "u", "r/1", Write, true},
			{"c", "u", "ro", Read, true}, {"c", "u", "ro", Write, false},
			{"c", "u", "wo", Read, false}, {"c", "u", "wo", Write, true},
			{"c", "u", "rw", Read, true}, {"c", "u", "rw", Write, true},
			{"c", "u", "other", Read, false},
		})
	})
	t.Run("deny wins within the user's rules whatever the order", func(t *testing.T) {
		a := loadACL(t, "user u\ntopic readwrite site/#\ntopic deny site/secret/#\ntopic deny +/+/private\n")
		checkACL(t, a, []aclCase{
			{"c", "u", "site/a", Read, true},
			{"c", "u", "site/secret", Read, false},
			{"c", "u", "site/secret/x", Write, false},
			{"c", "u", "site/x/private", Read, false},
		})
	})
	t.Run("deny pattern wins over allow pattern whatever the order", func(t *testing.T) {
		a := loadACL(t, "pattern readwrite dev/%c/#\npattern deny dev/%c/config\n")
		checkACL(t, a, []aclCase{
			{"pump1", "", "dev/pump1/temp", Write, true},
			{"pump1", "", "dev/pump1/config", Write, false},
			{"pump1", "", "dev/pump2/temp", Write, false},
		})
	})
	t.Run("patterns apply to every client, wherever they are written", func(t *testing.T) {
		a := loadACL(t, "user alice\ntopic read x\npattern write out/%u/#\nuser bob\ntopic read y\n")
		checkACL(t, a, []aclCase{
			{"c", "alice", "out/alice/1", Write, true},
			{"c", "bob", "out/bob/1", Write, true},
			{"c", "carol", "out/carol/1", Write, true}, // no user block at all
			{"c", "bob", "out/alice/1", Write, false},
			{"c", "", "out//1", Write, false}, // %u pattern skipped for anonymous
		})
	})
	t.Run("user allow is decided before pattern deny; user deny before pattern allow", func(t *testing.T) {
		a := loadACL(t, "user alice\ntopic read shared/#\ntopic deny own/alice/secret\npattern deny shared/locked\npattern read own/%u/#\n")
		checkACL(t, a, []aclCase{
			{"c", "alice", "shared/locked", Read, true}, // mosquitto: the user's grant returns first
			{"c", "bob", "shared/locked", Read, false},
			{"c", "alice", "own/alice/secret", Read, false},
			{"c", "alice", "own/alice/other", Read, true},
		})
	})
	t.Run("%c and %u substitution", func(t *testing.T) {
		a := loadACL(t, "pattern readwrite d/%c/%u/#\npattern read all/%c-%u\n")
		checkACL(t, a, []aclCase{
			{"cid", "usr", "d/cid/usr/x", Write, true},
			{"cid", "usr", "d/usr/cid/x", Write, false},
			{"cid", "usr", "all/cid-usr", Read, true}, // substituted inside a level, as mosquitto does
			{"cid", "", "d/cid//x", Read, false},
		})
	})
	t.Run("wildcards in client id or username refuse pattern access", func(t *testing.T) {
		a := loadACL(t, "user evil#\ntopic read own\npattern read d/%c/#\n")
		checkACL(t, a, []aclCase{
			{"#", "", "d/x/y", Read, false},
			{"+", "", "d/x", Read, false},
			{"ok", "ev+l", "d/ok/1", Read, false},
			{"ok", "", "d/ok/1", Read, true},
			{"ok", "evil#", "own", Read, true}, // the user's own rules still apply
		})
	})
	t.Run("$ topics only match $ rules", func(t *testing.T) {
		a := loadACL(t, "topic read #\ntopic read $SYS/broker/#\npattern read +/%c\n")
		checkACL(t, a, []aclCase{
			{"c", "", "any/thing", Read, true},
			{"c", "", "$SYS/broker/uptime", Read, true},
			{"c", "", "$SYS/other", Read, false},
			{"c", "", "$share/c", Read, false},
		})
	})
	t.Run("empty file refuses everything", func(t *testing.T) {
		a := loadACL(t, "# nothing\n\n")
		checkACL(t, a, []aclCase{{"c", "", "a", Read, false}, {"c", "u", "a", Write, false}})
	})
	t.Run("nil ACL allows everything", func(t *testing.T) {
		var a *ACL
		checkACL(t, a, []aclCase{{"c", "", "a", Read, true}, {"c", "u", "$SYS/x", Write, true}})
		if !a.CanSubscribe("c", "u", "#") {
			t.Error("nil ACL refused a subscription")
		}
	})
	t.Run("repeated user blocks add up", func(t *testing.T) {
		a := loadACL(t, "user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n")
		checkACL(t, a, []aclCase{{"x", "u", "a", Read, true}, {"x", "u", "c", Read, true}, {"x", "u", "b", Read, false}})
	})
	t.Run("layout: tabs, indentation, spaces in names, single word is the topic", func(t *testing.T) {
		a := loadACL(t, "  # indented comment\r\nuser  field engineer \r\n\ttopic\tread\tlogs/#\r\ntopic read\n")
		checkACL(t, a, []aclCase{
			{"c", "field engineer", "logs/1", Read, true},
			{"c", "field engineer", "logs/1", Write, false},
			{"c", "field engineer", "read", Write, true}, // mosquitto: "topic read" is topic "read", readwrite
		})
	})
}

func TestLoadACLErrors(t *testing.T) {
	for _, c := range []struct {
		text string
		line int
		want string
	}{
		{"user a\ntopic reed x\n", 2, `unknown access "reed"`},
		{"# c\nuser a\nsubscribe x\n", 3, `unknown keyword "subscribe"`},
		{"user\n", 1, "missing username"},
		{"topic\n", 1, "empty topic"},
		{"topic read a/#/b\n", 1, "'#' must be the last level"},
		{"pattern write a+/%c\n", 1, "'+' must occupy a whole level"},
	} {
		path := writeACL(t, c.text)
		_, err := LoadACL(path)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Line != c.line || fe.File != path || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadACL(%q) = %v, want %s:%d ... %s", c.text, err, path, c.line, c.want)
		}
	}
	if _, err := LoadACL(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestCanSubscribe(t *testing.T) {
	a := loadACL(t, `topic read public/#
user alice
topic read site/#
topic deny site/secret/#
topic write cmd/#
topic read $SYS/broker/load/#
user bob
topic readwrite +/bob/#
topic deny x/bob/#
pattern read dev/%c/#
pattern deny dev/+/keys
`)
	for _, c := range []struct {
		client, user, filter string
		want                 bool
	}{
		{"c", "", "public/#", true},
		{"c", "", "#", true},                   // overlaps public/#
		{"c", "", "site/#", false},             // anonymous has nothing there
		{"c", "alice", "site/secret/#", false}, // entirely denied
		{"c", "alice", "site/secret/x", false},
		{"c", "alice", "site/+/x", true}, // site/a/x is readable
		{"c", "alice", "site/#", true},
		{"c", "alice", "cmd/#", false}, // write-only
		{"c", "alice", "#", true},
		{"c", "alice", "$SYS/#", true},
		{"c", "alice", "$SYS/broker/clients", false},
		{"c", "alice", "+/broker/load", true}, // through site/#, not $SYS/broker/load
		{"c", "alice", "$share/g/site/a", true},
		{"c", "alice", "$share/g/site/secret/a", false},
		{"pump", "alice", "dev/pump/temp", true},  // through the pattern
		{"pump", "alice", "dev/pump/keys", false}, // deny pattern
		{"pump", "alice", "dev/other/temp", false},
		{"pump", "bob", "x/bob/#", false}, // user deny also hides the pattern stage
		{"pump", "bob", "y/bob/1", true},
		{"pu#mp", "carol", "dev/#", false}, // wildcard client id: no patterns
		{"pump", "carol", "dev/+/+", true},
	} {
		if got := a.CanSubscribe(c.client, c.user, c.filter); got != c.want {
			t.Errorf("CanSubscribe(%q, %q, %q) = %v, want %v", c.client, c.user, c.filter, got, c.want)
		}
	}
}

// CanSubscribe agrees with Allow: true exactly when some topic the filter
// matches is readable (checked over a finite universe of names).
func TestCanSubscribeAgreesWithAllow(t *testing.T) {
	a := loadACL(t, `topic read a/#
topic deny a/b/#
user u
topic read +/x
topic deny b/x
topic read $s/#
pattern read p/%c/+
pattern deny p/+/x
`)
	values := []string{"a", "b", "x", "p", "c", "$s", "z"}
	var names []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		for _, v := range values {
			n := v
			if depth > 0 {
				n = prefix + "/" + v
			}
			names = append(names, n)
			if depth < 3 {
				gen(n, depth+1)
			}
		}
	}
	gen("", 0)
	filters := []string{"#", "+", "a/#", "a/b", "a/b/#", "a/+", "+/x", "b/+", "$s/#", "+/+/#", "p/#", "p/c/x", "p/c/+", "p/+/x", "z/#", "+/+"}
	for _, user := range []string{"", "u"} {
		for _, f := range filters {
			want := false
			for _, n := range names {
				if topic.Match(f, n) && a.Allow("c", user, n, Read) {
					want = true
					break
				}
			}
			if got := a.CanSubscribe("c", user, f); got != want {
				t.Errorf("user %q: CanSubscribe(%q) = %v, brute force over Allow = %v", user, f, got, want)
			}
		}
	}
}
