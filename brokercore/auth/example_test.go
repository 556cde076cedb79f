package auth_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/outpost-iot/outpost/brokercore/auth"
)

func ExampleACL_Allow() {
	dir, _ := os.MkdirTemp("", "acl")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "acl")
	os.WriteFile(path, []byte(`# anonymous clients may read the public tree
topic read public/#

user pump-station
topic readwrite site/#
topic deny site/keys/#

# every device may publish under its own client id
pattern write devices/%c/#
`), 0o600)

	acl, err := auth.LoadACL(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(acl.Allow("c1", "", "public/weather", auth.Read))
	fmt.Println(acl.Allow("c1", "pump-station", "site/flow", auth.Write))
	fmt.Println(acl.Allow("c1", "pump-station", "site/keys", auth.Read))
	fmt.Println(acl.Allow("sensor-7", "", "devices/sensor-7/temp", auth.Write))
	fmt.Println(acl.CanSubscribe("c1", "pump-station", "site/keys/#"))
	// Output:
	// true
	// true
	// false
	// true
	// false
}

func ExamplePasswords_Check() {
	dir, _ := os.MkdirTemp("", "passwd")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "passwd")
	// What `outpost passwd -c -b passwd alice s3cret` does.
	if err := auth.SetPassword(path, "alice", []byte("s3cret"), auth.HashOptions{}, true); err != nil {
		fmt.Println(err)
		return
	}
	pw, err := auth.LoadPasswords(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pw.Check("alice", []byte("s3cret")), pw.Check("alice", []byte("guess")))
	// Output: true false
}
