package machinefile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxLineLength bounds a line, so that a file without newlines (a binary
// given by mistake) costs a fixed amount of memory rather than all of it.
const MaxLineLength = 64 << 10

// MaxSlots bounds a host's slot count, including the sum over its repeats:
// a larger count is a typo, and callers may allocate per slot.
const MaxSlots = 1_000_000

const byteOrderMark = "\uFEFF"

// ParseFile reads the machinefile at path.
func ParseFile(path string) ([]Host, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads a machinefile from r and returns its hosts in the order of
// their first appearance. Syntax errors are a *ParseError with name as File;
// errors reading r are returned wrapped.
func Parse(name string, r io.Reader) ([]Host, error) {
	// Room for the longest allowed line and its "\r\n", so that the length
	// check below sees the line's text and not its ending.
	br := bufio.NewReaderSize(r, MaxLineLength+2)
	var hosts []Host
	seen := make(map[hostKey]int) // index in hosts
	for lineno := 1; ; lineno++ {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, tooLong(name, lineno, raw)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		if len(line) > MaxLineLength {
			return nil, tooLong(name, lineno, raw)
		}
		if lineno == 1 {
			line = strings.TrimPrefix(line, byteOrderMark)
		}
		h, word, ok, perr := parseLine(line)
		if perr != nil {
			perr.File, perr.Line = name, lineno
			return nil, perr
		}
		if ok {
			h.Line = lineno
			if i, dup := seen[h.key()]; dup {
				if hosts[i].Slots > MaxSlots-h.Slots {
					return nil, &ParseError{File: name, Line: lineno, Text: word,
						Err: fmt.Errorf("%w: %s has more than %d slots in all", ErrSlots, hosts[i], MaxSlots)}
				}
				hosts[i].Slots += h.Slots
				hosts[i].Proxies = append(hosts[i].Proxies, h.Proxies...)
				if h.Render != "" {
					hosts[i].Render = h.Render
				}
			} else {
				seen[h.key()] = len(hosts)
				hosts = append(hosts, h)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(hosts) == 0 {
		return nil, &ParseError{File: name, Err: ErrEmpty}
	}
	return hosts, nil
}

// tooLong quotes only the start of the line: the whole of it would bury the
// message.
func tooLong(name string, lineno int, raw []byte) error {
	const keep = 32
	text := string(raw[:min(len(raw), keep)]) + "..."
	return &ParseError{File: name, Line: lineno, Text: text,
		Err: fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, MaxLineLength)}
}
