package auth

import "fmt"

// FileError is a problem at one line of a password or ACL file. Its text
// names the file, the line and the problem, e.g.
// `/etc/outpost/passwd:3: user "bob": hash is 40 bytes, want 64 (truncated line?)`.
type FileError struct {
	File string
	Line int    // 1-based
	Msg  string // what is wrong with the line
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

func lineErr(file string, line int, format string, args ...any) error {
	return &FileError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}
