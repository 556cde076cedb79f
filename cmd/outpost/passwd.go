package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost-iot/outpost/brokercore/auth"
)

// passwdOpts are mosquitto_passwd's flags.
type passwdOpts struct {
	create, delete, batch, update bool
	hash                          string
	iterations                    int
}

// newPasswdCmd is `outpost passwd`, mosquitto_passwd with the same flags
// and file format; the work is in brokercore/auth.
func newPasswdCmd() *cobra.Command {
	var o passwdOpts
	cmd := &cobra.Command{
		Use: "passwd [-c | -D] [-H sha512 | -H sha512-pbkdf2] [-I iterations] passwordfile username",
		Example: `  outpost passwd -c /etc/outpost/passwd alice      # new file, prompts twice
  outpost passwd /etc/outpost/passwd bob           # add or change bob
  outpost passwd -b /etc/outpost/passwd bob s3cret # password on the command line
  outpost passwd -I 100000 /etc/outpost/passwd ops # slower hash for a human login
  outpost passwd -D /etc/outpost/passwd bob        # delete bob
  outpost passwd -U /etc/outpost/passwd            # hash a plain-text file in place`,
		Short: "Manage a mosquitto password file (flags as mosquitto_passwd)",
		Long: `Manage a password file in mosquitto's format, as mosquitto_passwd does: each
line is username:$7$<iterations>$<salt>$<hash> (PBKDF2-SHA512, the default) or
username:$6$<salt>$<hash> (SHA-512, -H sha512). Files written by one tool are
read by the other, by mosquitto and by outpost (broker.password_file).

Without -b the password is asked for twice, without echo on a terminal (or read
as two lines from standard input). The file is replaced atomically and keeps
its mode and owner; a new file is created with mode 0600. Send the running hub
SIGHUP (systemctl reload outpost) to load the changed file.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPasswd(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // as mosquitto_passwd: flags first, so a password may start with '-'
	f.BoolVarP(&o.create, "create", "c", false, "create a new password file; overwrites an existing one")
	f.BoolVarP(&o.delete, "delete", "D", false, "delete the username rather than adding/updating its password")
	f.BoolVarP(&o.batch, "batch", "b", false, "batch mode: the password is the last argument")
	f.BoolVarP(&o.update, "update", "U", false, "hash every plain-text password in the file in place")
	f.StringVarP(&o.hash, "hash", "H", "sha512-pbkdf2", "hash algorithm: sha512-pbkdf2 ($7$) or sha512 ($6$, Mosquitto 1.6 and earlier)")
	f.IntVarP(&o.iterations, "iterations", "I", auth.DefaultIterations, "PBKDF2 iterations for sha512-pbkdf2")
	return cmd
}

func runPasswd(cmd *cobra.Command, o passwdOpts, args []string) error {
	var opts auth.HashOptions
	switch o.hash {
	case "sha512-pbkdf2":
		opts.Type = auth.SHA512PBKDF2
	case "sha512":
		opts.Type = auth.SHA512
	default:
		return fmt.Errorf("passwd: unknown hash type %q (want sha512-pbkdf2 or sha512)", o.hash)
	}
	if o.iterations < 1 {
		return fmt.Errorf("passwd: number of iterations must be > 0, not %d", o.iterations)
	}
	opts.Iterations = o.iterations
	switch {
	case o.create && o.delete:
		return errors.New("passwd: -c and -D cannot be used together")
	case o.create && o.update:
		return errors.New("passwd: -c and -U cannot be used together")
	case o.delete && o.update:
		return errors.New("passwd: -D and -U cannot be used together")
	case o.delete && o.batch:
		return errors.New("passwd: -b and -D cannot be used together")
	case o.update && o.batch:
		return errors.New("passwd: -b and -U cannot be used together")
	}
	usage := func(what string) error {
		return fmt.Errorf("passwd: %s\nusage: outpost passwd [-c | -D] passwordfile username\n       outpost passwd [-c] -b passwordfile username password\n       outpost passwd -U passwordfile", what)
	}

	if o.update {
		if len(args) != 1 {
			return usage("-U takes the password file only")
		}
		n, err := auth.HashPlainFile(args[0], opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "hashed %d plain-text password(s) in %s\n", n, args[0])
		return nil
	}
	want := 2
	if o.batch {
		want = 3
	}
	if len(args) != want {
		if o.batch {
			return usage("-b needs password file, username and password")
		}
		return usage("need password file and username")
	}
	path, user := args[0], args[1]
	if err := auth.ValidUsername(user); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	if o.delete {
		return auth.DeleteUser(path, user)
	}
	if !o.create {
		// Fail before asking for a password, as mosquitto_passwd does.
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("passwd: unable to open password file %s (-c creates one): %w", path, err)
		}
	}
	var password []byte
	if o.batch {
		password = []byte(args[2])
	} else {
		var err error
		if password, err = askPassword(cmd.InOrStdin(), cmd.ErrOrStderr()); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		// main catches SIGINT, so a Ctrl-C while typing does not kill us; it
		// cancels the context, and we must not write the file.
		if ctx := cmd.Context(); ctx != nil && ctx.Err() != nil {
			return errors.New("passwd: interrupted; file not changed")
		}
	}
	if len(password) > 65535 {
		return errors.New("passwd: password must be less than 65536 characters long")
	}
	return auth.SetPassword(path, user, password, opts, o.create)
}

// askPassword prompts twice ("Password: ", "Reenter password: ") and
// returns the password if both agree. On a terminal echo is off while
// typing; otherwise two lines are read from in.
func askPassword(in io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := in.(*os.File); ok {
		if restore, err := noEcho(f); err == nil {
			defer restore()
		}
	}
	r := bufio.NewReader(in)
	read := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		line, err := r.ReadString('\n')
		fmt.Fprintln(prompt)
		if err != nil && (err != io.EOF || line == "") {
			return "", fmt.Errorf("reading password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	pw1, err := read("Password: ")
	if err != nil {
		return nil, err
	}
	pw2, err := read("Reenter password: ")
	if err != nil {
		return nil, err
	}
	if pw1 != pw2 {
		return nil, errors.New("passwords do not match")
	}
	if pw1 == "" {
		return nil, errors.New("empty password")
	}
	return []byte(pw1), nil
}
