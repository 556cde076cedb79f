//go:build !linux

package main

import (
	"errors"
	"os"
)

// noEcho is only implemented for Linux terminals; elsewhere the password
// is read with echo on.
func noEcho(*os.File) (func(), error) { return nil, errors.New("no echo control on this system") }
