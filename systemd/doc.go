// Package systemd holds no Go code: it is where Outpost meets the host.
//
//   - outpost.service: the hardened unit (Type=notify with a watchdog, its
//     own user, read-only system, only the sensor and radio devices).
//   - outpost.sysusers, outpost.tmpfiles: the user, device groups and state
//     directory (sysusers.d(5), tmpfiles.d(5)).
//   - outpost.yaml: the field-ready /etc/outpost/outpost.yaml the package
//     installs (loopback only, commented examples); outpost.default is
//     /etc/default/outpost for OUTPOST_* overrides.
//   - nfpm.yaml, scripts/, package.sh: static binaries for amd64, arm64 and
//     armhf, packaged as .deb with nfpm.
//
// The tests verify the unit with systemd-analyze, apply the sysusers and
// tmpfiles files to a scratch root, and build and inspect the arm64 package.
package systemd
