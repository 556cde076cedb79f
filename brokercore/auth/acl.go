package auth

import (
	"fmt"
	"os"
	"strings"

	"github.com/outpost-iot/outpost/brokercore/topic"
)

// Access is what a client wants to do with a topic. The values are
// mosquitto's MOSQ_ACL_READ and MOSQ_ACL_WRITE bits.
type Access int

const (
	// Read is receiving a message: the broker checks it for every message
	// it would deliver to a subscriber, retained ones included.
	Read Access = 1
	// Write is publishing.
	Write Access = 2
	// deny is an explicit "deny" line (MOSQ_ACL_NONE).
	deny Access = 0
)

// rule is one topic or pattern line.
type rule struct {
	filter string // topic filter; a pattern's still holds %c/%u
	access Access // Read|Write bits, or deny
	line   int
	// usesU/usesC: the pattern holds %u / %c.
	usesU, usesC bool
}

// ruleList keeps deny rules ahead of the others, as mosquitto does by
// prepending them ("ACL denials are iterated over first"), so a deny wins
// over any allow in the same list wherever it is written.
type ruleList struct {
	deny  []rule
	allow []rule // file order
}

func (l *ruleList) add(r rule) {
	if r.access == deny {
		l.deny = append(l.deny, r)
	} else {
		l.allow = append(l.allow, r)
	}
}

func (l *ruleList) empty() bool { return len(l.deny) == 0 && len(l.allow) == 0 }

// ACL is a loaded acl_file. It is immutable and safe for concurrent use.
// A nil *ACL (no acl_file configured) allows everything, as mosquitto
// without an acl_file.
type ACL struct {
	path     string
	anon     ruleList             // "topic" lines before the first "user" line
	users    map[string]*ruleList // "topic" lines after "user <name>"
	patterns ruleList             // every "pattern" line, wherever it is
}

// LoadACL reads a mosquitto acl_file:
//
//	# comment
//	topic [read|write|readwrite|deny] <topic>    (before any user line: anonymous clients)
//	user <username>
//	topic [read|write|readwrite|deny] <topic>    (for that user)
//	pattern [read|write|readwrite|deny] <topic>  (every client; %c = client id, %u = username)
//
// The access word may be left out (readwrite); as in mosquitto, a line
// with a single word after topic/pattern takes that word as the topic.
// Several "user" blocks for the same name add up. A line with an unknown
// keyword, a bad access word, a missing username or an invalid topic
// filter is an error naming the file, the line and the problem.
func LoadACL(path string) (*ACL, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load acl file: %w", err)
	}
	a := &ACL{path: path, users: make(map[string]*ruleList)}
	var cur *ruleList = &a.anon
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		keyword, rest, _ := strings.Cut(line, " ")
		if k, r, ok := strings.Cut(line, "\t"); ok && len(k) < len(keyword) {
			keyword, rest = k, r
		}
		rest = strings.TrimSpace(rest)
		switch keyword {
		case "user":
			if rest == "" {
				return nil, fmt.Errorf("load acl file: %w", lineErr(path, n, "missing username after \"user\""))
			}
			l := a.users[rest]
			if l == nil {
				l = &ruleList{}
				a.users[rest] = l
			}
			cur = l
		case "topic", "pattern":
			r, problem := parseRule(keyword, rest)
			if problem != "" {
				return nil, fmt.Errorf("load acl file: %w", lineErr(path, n, "%s", problem))
			}
			r.line = n
			if keyword == "topic" {
				cur.add(r)
			} else {
				r.usesC = strings.Contains(r.filter, "%c")
				r.usesU = strings.Contains(r.filter, "%u")
				a.patterns.add(r)
			}
		default:
			return nil, fmt.Errorf("load acl file: %w", lineErr(path, n, "unknown keyword %q (want user, topic or pattern)", keyword))
		}
	}
	return a, nil
}

// parseRule parses what follows "topic" or "pattern".
func parseRule(keyword, rest string) (rule, string) {
	if rest == "" {
		return rule{}, fmt.Sprintf("empty topic after %q", keyword)
	}
	word, filter, found := strings.Cut(rest, " ")
	if w, f, ok := strings.Cut(rest, "\t"); ok && len(w) < len(word) {
		word, filter, found = w, f, ok
	}
	filter = strings.TrimSpace(filter)
	r := rule{access: Read | Write}
	if !found || filter == "" {
		// "topic foo/bar": the default access readwrite.
		r.filter = rest
	} else {
		r.filter = filter
		switch word {
		case "read":
			r.access = Read
		case "write":
			r.access = Write
		case "readwrite":
			r.access = Read | Write
		case "deny":
			r.access = deny
		default:
			return rule{}, fmt.Sprintf("unknown access %q (want read, write, readwrite or deny)", word)
		}
	}
	if err := topic.ValidFilter(r.filter); err != nil {
		return rule{}, fmt.Sprintf("invalid %s: %v", keyword, err)
	}
	return r, ""
}

// Path is the file a was loaded from.
func (a *ACL) Path() string { return a.path }

// listFor returns the topic rules for username ("" = anonymous), or nil.
func (a *ACL) listFor(username string) *ruleList {
	if username == "" {
		if a.anon.empty() {
			return nil
		}
		return &a.anon
	}
	return a.users[username]
}

// Allow reports whether the client may access topic name (no wildcards),
// username "" meaning an anonymous client. access is Read (deliver to this
// client) or Write (accept its publish). It follows mosquitto 2.0's
// acl_check_default:
//
//  1. The client's own rules (its "user" block, or for an anonymous
//     client the lines before the first "user"): a matching deny refuses;
//     else a matching rule granting access allows.
//  2. Otherwise the patterns, if there are any: a client whose username or
//     client id holds '+' or '#' is refused (it could widen a pattern);
//     patterns with %u are skipped for anonymous clients; %c and %u are
//     replaced; a matching deny pattern refuses; else a matching pattern
//     granting access allows.
//  3. Otherwise refused. A topic beginning with '$' only matches rules
//     beginning with '$' [MQTT-4.7.2-1].
//
// So deny beats allow within the user's rules and within the patterns,
// whatever the line order; an allow in the user's own rules is decided
// before any pattern is looked at, as in mosquitto.
func (a *ACL) Allow(clientID, username, name string, access Access) bool {
	if a == nil {
		return true
	}
	if l := a.listFor(username); l != nil {
		for _, r := range l.deny {
			if topic.Match(r.filter, name) {
				return false
			}
		}
		for _, r := range l.allow {
			if r.access&access != 0 && topic.Match(r.filter, name) {
				return true
			}
		}
	}
	if a.patterns.empty() || dangerousID(clientID, username) {
		return false
	}
	for _, r := range a.patterns.deny {
		if f, ok := substitute(r, clientID, username); ok && topic.Match(f, name) {
			return false
		}
	}
	for _, r := range a.patterns.allow {
		if r.access&access == 0 {
			continue
		}
		if f, ok := substitute(r, clientID, username); ok && topic.Match(f, name) {
			return true
		}
	}
	return false
}

// dangerousID: a username or client id with '+' or '#' would turn a
// pattern into a wider filter, so mosquitto refuses pattern access.
func dangerousID(clientID, username string) bool {
	return strings.ContainsAny(clientID, "+#") || strings.ContainsAny(username, "+#")
}

// substitute fills %c and %u into a pattern. ok is false for a %u pattern
// and an anonymous client: mosquitto skips it.
func substitute(r rule, clientID, username string) (string, bool) {
	if !r.usesC && !r.usesU {
		return r.filter, true
	}
	if r.usesU && username == "" {
		return "", false
	}
	f := r.filter
	if r.usesC {
		f = strings.ReplaceAll(f, "%c", clientID)
	}
	if r.usesU {
		f = strings.ReplaceAll(f, "%u", username)
	}
	return f, true
}

// CanSubscribe reports whether the client could read at least one topic
// matching filter, i.e. whether Allow(clientID, username, t, Read) holds
// for some topic t that filter matches. The broker may refuse a
// subscription for which it is false (SUBACK 0x80 / v5 0x87) instead of
// accepting one that can never deliver anything; it still calls Allow for
// every message. Mosquitto 2.0 accepts every subscription and only
// filters deliveries; refusing tells the user at once.
//
// A shared subscription ($share/group/f) is judged by f. It is exact,
// deny rules included: a filter whose every readable part is denied gives
// false; only for very large ACLs does the search stop early and answer
// true (then Allow still guards each message).
func (a *ACL) CanSubscribe(clientID, username, filter string) bool {
	if a == nil {
		return true
	}
	if _, f, ok, err := topic.ParseShared(filter); ok && err == nil {
		filter = f
	}
	want := parseFilt(filter)
	budget := coverBudget
	var userDeny []filt
	l := a.listFor(username)
	if l != nil {
		for _, r := range l.deny {
			userDeny = append(userDeny, parseFilt(r.filter))
		}
		for _, r := range l.allow {
			if r.access&Read == 0 {
				continue
			}
			if x, ok := intersect(want, parseFilt(r.filter)); ok && !covered(x, userDeny, &budget) {
				return true
			}
		}
	}
	if a.patterns.empty() || dangerousID(clientID, username) {
		return false
	}
	// A topic reaches the patterns only if the user's rules neither denied
	// nor granted it; granted ones were handled above, so a pattern grant
	// counts where neither a user deny nor a pattern deny covers it.
	denies := userDeny
	for _, r := range a.patterns.deny {
		if f, ok := substitute(r, clientID, username); ok {
			denies = append(denies, parseFilt(f))
		}
	}
	for _, r := range a.patterns.allow {
		if r.access&Read == 0 {
			continue
		}
		f, ok := substitute(r, clientID, username)
		if !ok {
			continue
		}
		if x, ok := intersect(want, parseFilt(f)); ok && !covered(x, denies, &budget) {
			return true
		}
	}
	return false
}
