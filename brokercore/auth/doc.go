// Package auth reads and writes Mosquitto-compatible security files: the
// password_file written by mosquitto_passwd ($7$ PBKDF2-SHA512, the
// Mosquitto 2.0 default, and the older $6$ salted SHA-512) and the
// acl_file (user/topic/pattern lines with %c and %u substitution),
// evaluated the way Mosquitto 2.0's default security does.
//
// The broker loads a *Passwords and an *ACL at start and again on SIGHUP
// (a new value replaces the old one; both are immutable apart from the
// verification cache, and safe for concurrent use). `outpost passwd` edits
// password files through SetPassword, DeleteUser and HashPlainFile.
//
// Imports: the standard library and brokercore/topic only (x/crypto is
// allowed but not needed: crypto/pbkdf2 is in the standard library).
package auth
