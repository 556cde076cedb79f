package systemd_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/configs"
)

// need returns the path of a host tool the deployment tests use, failing
// with the fix when it is missing (test/run.sh installs them).
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if p2 := "/usr/sbin/" + tool; fileExists(p2) {
			return p2
		}
		t.Fatalf("%s not found: apt-get install -y %s", tool, pkg)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// unitDirectives reads a unit file into key -> values.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			d[k] = append(d[k], v)
		}
	}
	return d
}

// verifyUnit runs systemd-analyze verify on a copy of unit whose ExecStart
// binary is replaced by an existing executable (verify checks that the
// binary exists), and fails on any output: systemd-analyze exits 0 even
// for unknown directives and only prints a warning.
func verifyUnit(t *testing.T, unit string) {
	t.Helper()
	analyze := need(t, "systemd-analyze", "systemd")
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const bin = "ExecStart=/usr/bin/outpost "
	if !bytes.Contains(data, []byte(bin)) {
		t.Fatalf("%s has no %q line", unit, bin)
	}
	data = bytes.Replace(data, []byte(bin), []byte("ExecStart="+self+" "), 1)
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "outpost.service")
	if err := os.WriteFile(copyPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", copyPath)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

func TestUnitVerifies(t *testing.T) { verifyUnit(t, "outpost.service") }

// TestUnitContract checks the promises the unit makes to the hub and to the
// other files here.
func TestUnitContract(t *testing.T) {
	d := unitDirectives(t, "outpost.service")
	want := map[string]string{
		"Type":                    "notify",
		"WatchdogSec":             "30s",
		"Restart":                 "on-failure",
		"User":                    "outpost",
		"StateDirectory":          "outpost",
		"ConfigurationDirectory":  "outpost",
		"ExecStart":               "/usr/bin/outpost run -c /etc/outpost/outpost.yaml",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"DevicePolicy":            "closed",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"ProtectKernelTunables":   "yes",
		"ProtectControlGroups":    "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"RestartSec", "LimitNOFILE", "TimeoutStopSec"} {
		if len(d[k]) == 0 {
			t.Errorf("%s= is missing", k)
		}
	}
	for _, dev := range []string{"char-i2c rw", "char-spi rw", "char-gpiochip rw", "char-ttyS rw", "char-ttyUSB rw", "char-ttyAMA rw"} {
		if !slices.Contains(d["DeviceAllow"], dev) {
			t.Errorf("DeviceAllow=%s is missing", dev)
		}
	}

	// Every supplementary group exists after sysusers runs.
	sysusers, err := os.ReadFile("outpost.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]string{}
	for _, line := range strings.Split(string(sysusers), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "g" || f[0] == "u") {
			created[f[1]] = f[0]
		}
	}
	if created["outpost"] != "u" {
		t.Error("outpost.sysusers does not create the user outpost")
	}
	for _, g := range strings.Fields(d["SupplementaryGroups"][0]) {
		if created[g] == "" {
			t.Errorf("SupplementaryGroups=%s but outpost.sysusers does not create it (systemd would fail with 216/GROUP)", g)
		}
	}

	// The packaged config keeps its state where StateDirectory= puts it.
	cfg, err := configs.Load("outpost.yaml", nil)
	if err != nil {
		t.Fatalf("packaged outpost.yaml: %v", err)
	}
	if cfg.DataDir != "/var/lib/"+d["StateDirectory"][0] {
		t.Errorf("outpost.yaml data_dir=%q, unit StateDirectory=%s", cfg.DataDir, d["StateDirectory"][0])
	}
}

// TestSysusersAndTmpfiles applies outpost.sysusers and outpost.tmpfiles to
// a scratch root, as the package's postinst does to the real one.
func TestSysusersAndTmpfiles(t *testing.T) {
	sysusers := need(t, "systemd-sysusers", "systemd")
	tmpfiles := need(t, "systemd-tmpfiles", "systemd")
	if os.Geteuid() != 0 {
		t.Skip("systemd-tmpfiles --root needs root to chown the scratch state directory")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Absolute paths: with --root, relative ones are looked up in the root.
	usersConf, _ := filepath.Abs("outpost.sysusers")
	tmpConf, _ := filepath.Abs("outpost.tmpfiles")
	if out, err := exec.Command(sysusers, "--root="+root, usersConf).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	if out, err := exec.Command(tmpfiles, "--root="+root, "--create", tmpConf).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	m := regexp.MustCompile(`(?m)^outpost:x:(\d+):(\d+):[^:]*:/var/lib/outpost:/usr/sbin/nologin$`).FindSubmatch(passwd)
	if m == nil {
		t.Fatalf("no outpost system user in passwd:\n%s", passwd)
	}
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	for _, g := range []string{"outpost", "i2c", "spi", "gpio", "dialout"} {
		if !regexp.MustCompile(`(?m)^` + g + `:x:\d+:`).Match(group) {
			t.Errorf("group %s not created:\n%s", g, group)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "var/lib/outpost"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 || !fi.IsDir() {
		t.Errorf("/var/lib/outpost mode %v, want drwxr-x---", fi.Mode())
	}
	if uid := ownerUID(fi); uid != string(m[1]) {
		t.Errorf("/var/lib/outpost owned by uid %s, want outpost (%s)", uid, m[1])
	}
}

// TestPackageArm64 runs package.sh for arm64 and inspects the .deb: its
// files, control fields and conffiles, a static aarch64 binary stamped with
// the version, and a unit that still verifies.
func TestPackageArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the arm64 cross build and nfpm packaging (about a minute)")
	}
	dpkgDeb := need(t, "dpkg-deb", "dpkg")
	dist := t.TempDir()
	cmd := exec.Command("bash", "package.sh", "arm64")
	cmd.Env = append(os.Environ(), "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package.sh arm64: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "outpost_*_arm64.deb"))
	if len(debs) != 1 {
		t.Fatalf("package.sh made %v, want one outpost_*_arm64.deb", debs)
	}
	deb := debs[0]

	out, err := exec.Command(dpkgDeb, "-c", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v", err)
	}
	for _, f := range []string{
		"./usr/bin/outpost",
		"./usr/lib/systemd/system/outpost.service",
		"./usr/lib/sysusers.d/outpost.conf",
		"./usr/lib/tmpfiles.d/outpost.conf",
		"./etc/outpost/outpost.yaml",
		"./etc/default/outpost",
		"./usr/share/doc/outpost/outpost.example.yaml",
	} {
		if !regexp.MustCompile(`(?m) ` + regexp.QuoteMeta(f) + `$`).Match(out) {
			t.Errorf("dpkg-deb -c does not list %s:\n%s", f, out)
		}
	}
	if !regexp.MustCompile(`(?m)^-rwxr-xr-x root/root .* \./usr/bin/outpost$`).Match(out) {
		t.Errorf("/usr/bin/outpost is not -rwxr-xr-x root/root:\n%s", out)
	}

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Section", "Description"} {
		v, err := exec.Command(dpkgDeb, "-f", deb, f).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", f, err)
		}
		fields[f] = strings.TrimSpace(string(v))
	}
	if fields["Package"] != "outpost" || fields["Architecture"] != "arm64" || fields["Section"] != "net" ||
		fields["Maintainer"] == "" || !strings.HasPrefix(fields["Description"], "Edge IoT hub") ||
		!regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`).MatchString(fields["Version"]) {
		t.Errorf("control fields: %q", fields)
	}
	// With no tag, package.sh derives 0.0.0~git<commits>.g<hash>; a bare
	// hash must never become the version, even one starting with a digit.
	if err := exec.Command("git", "describe", "--tags", "--abbrev=0").Run(); err != nil &&
		!regexp.MustCompile(`^0\.0\.0~git[0-9]+\.g([0-9a-f]+|dev)(\.dirty)?$`).MatchString(fields["Version"]) {
		t.Errorf("untagged tree: Version %q, want 0.0.0~git<commits>.g<hash>", fields["Version"])
	}
	if !strings.Contains(deb, "_"+fields["Version"]+"_") {
		t.Errorf("file name %s does not carry Version %s", deb, fields["Version"])
	}

	conffiles, err := exec.Command(dpkgDeb, "-I", deb, "conffiles").Output()
	if err != nil || string(conffiles) != "/etc/default/outpost\n/etc/outpost/outpost.yaml\n" {
		t.Errorf("conffiles = %q, %v", conffiles, err)
	}
	postinst, err := exec.Command(dpkgDeb, "-I", deb, "postinst").Output()
	if err != nil || !bytes.Contains(postinst, []byte("systemd-sysusers")) || !bytes.Contains(postinst, []byte("systemd-tmpfiles --create")) ||
		!bytes.Contains(postinst, []byte("daemon-reload")) {
		t.Errorf("postinst lacks sysusers/tmpfiles/daemon-reload: %v\n%s", err, postinst)
	}

	root := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	checkBinary(t, filepath.Join(root, "usr/bin/outpost"))
	verifyUnit(t, filepath.Join(root, "usr/lib/systemd/system/outpost.service"))
	packaged, _ := os.ReadFile(filepath.Join(root, "etc/outpost/outpost.yaml"))
	source, _ := os.ReadFile("outpost.yaml")
	if !bytes.Equal(packaged, source) {
		t.Error("/etc/outpost/outpost.yaml in the package differs from systemd/outpost.yaml")
	}
	if _, err := configs.Load(filepath.Join(root, "etc/outpost/outpost.yaml"), nil); err != nil {
		t.Errorf("packaged /etc/outpost/outpost.yaml does not pass config check:\n%v", err)
	}
}

// checkBinary: an aarch64 ELF, statically linked (CGO_ENABLED=0: no
// interpreter, no shared libraries), with main.version set from git.
func checkBinary(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("%s is %v %v, want aarch64", path, f.Machine, f.Class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not a static binary", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not a static binary", path, libs)
	}
	version := "dev"
	if out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(version)) {
		t.Errorf("%s does not contain the version %q: is `var version` in package main?", path, version)
	}
}
