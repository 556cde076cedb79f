package hub

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/outpost-iot/outpost"

// TestImportRules enforces the package table of DESIGN.md with go list:
// a forbidden edge fails here, where the change is, not in review.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	// Every package of the module with its direct imports and all its deps.
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	type pkg struct{ imports, deps []string }
	pkgs := map[string]pkg{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			continue
		}
		pkgs[f[0]] = pkg{imports: strings.Fields(f[1]), deps: strings.Fields(f[2])}
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}

	isStd := func(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }
	within := func(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }

	// Packages that are pure: standard library only, all the way down.
	stdOnly := []string{"brokercore/packet", "brokercore/topic", "brokercore/msg", "snbridge/snpacket"}
	for _, rel := range stdOnly {
		p, ok := pkgs[mod+"/"+rel]
		if !ok {
			continue // not written yet
		}
		for _, d := range p.deps {
			if !isStd(d) {
				t.Errorf("%s must import only the standard library; it depends on %s", rel, d)
			}
		}
	}

	// Forbidden edges (transitive): importer tree -> forbidden tree, and why.
	type rule struct{ from, to, why string }
	rules := []rule{
		{"snbridge", mod + "/brokercore", "snbridge gets msg.Sessions/msg.Publisher, never the broker"},
		{"adapters", mod + "/brokercore", "adapters get a msg.Publisher, never the broker"},
		{"storeforward", mod + "/brokercore", "storeforward taps the broker through msg.Tap"},
		{"brokercore", mod + "/snbridge", "the broker knows nothing of its in-process users"},
		{"brokercore", mod + "/adapters", "the broker knows nothing of its in-process users"},
		{"brokercore", mod + "/storeforward", "the broker knows nothing of its in-process users"},
		{"storeforward/queue", mod + "/brokercore/client", "the queue stores opaque records"},
		{"storeforward/queue", mod + "/brokercore/packet", "the queue stores opaque records"},
	}
	allowedUnder := map[string][]string{
		// snbridge, adapters and storeforward may use these leaves of brokercore.
		"snbridge":     {"brokercore/msg", "brokercore/topic"},
		"adapters":     {"brokercore/msg", "brokercore/topic"},
		"storeforward": {"brokercore/msg", "brokercore/topic", "brokercore/client", "brokercore/packet"},
	}
	for name, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(name, mod), "/")
		for _, r := range rules {
			if !within(rel, r.from) {
				continue
			}
			for _, d := range p.deps {
				if !within(d, r.to) {
					continue
				}
				ok := false
				for _, a := range allowedUnder[strings.SplitN(r.from, "/", 2)[0]] {
					if within(d, mod+"/"+a) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s depends on %s: %s", rel, strings.TrimPrefix(d, mod+"/"), r.why)
				}
			}
		}
		// Only hub constructs parts; only cmd and test import hub.
		for _, d := range p.imports {
			if within(d, mod+"/hub") && !within(rel, "cmd") && !within(rel, "test") && !within(rel, "hub") {
				t.Errorf("%s imports %s: only cmd and test may import hub", rel, d)
			}
			// viper only in configs.
			if within(d, "github.com/spf13/viper") && !within(rel, "configs") {
				t.Errorf("%s imports viper: only configs may", rel)
			}
			if within(d, mod+"/configs") && !within(rel, "cmd") && !within(rel, "test") && !within(rel, "hub") {
				t.Errorf("%s imports configs: components take their own Config", rel)
			}
		}
	}
}
