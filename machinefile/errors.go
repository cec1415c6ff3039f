package machinefile

import (
	"errors"
	"fmt"
)

// What went wrong on a line. They are the Err of a ParseError, possibly
// wrapped with a hint, so test them with errors.Is.
var (
	ErrHost        = errors.New("invalid host")
	ErrUser        = errors.New("invalid user name")
	ErrSlots       = errors.New("invalid slot count")
	ErrPort        = errors.New("invalid port")
	ErrOption      = errors.New("invalid option")
	ErrLineTooLong = errors.New("line too long")
	ErrEmpty       = errors.New("no hosts")
)

// ParseError locates a mistake in a machinefile. Line is 0 when the mistake
// is the file as a whole, as with ErrEmpty.
type ParseError struct {
	File string
	Line int    // 1-based
	Text string // the offending word of the line, or the start of an overlong line
	Err  error
}

// Error reads "file:line: "text": reason", the form editors and terminals
// turn into a jump to the line.
func (e *ParseError) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	case e.Text == "":
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %q: %v", e.File, e.Line, e.Text, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }
