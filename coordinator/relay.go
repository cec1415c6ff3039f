package coordinator

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// lineRelay prefixes each line a worker prints with its node, and keeps the
// last lines for error messages.
type lineRelay struct {
	prefix string
	dst    io.Writer // a syncWriter: whole lines, one writer at a time

	mu      sync.Mutex
	partial []byte
	recent  []string
}

const keepLines = 3

func (r *lineRelay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partial = append(r.partial, p...)
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		r.emit(r.partial[:i])
		r.partial = r.partial[i+1:]
	}
	// A line that never ends must not grow without bound.
	if len(r.partial) > 64<<10 {
		r.emit(r.partial)
		r.partial = nil
	}
	return len(p), nil
}

func (r *lineRelay) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	out := make([]byte, 0, len(r.prefix)+len(line)+1)
	out = append(append(append(out, r.prefix...), line...), '\n')
	_, _ = r.dst.Write(out)
	r.recent = append(r.recent, string(line))
	if len(r.recent) > keepLines {
		r.recent = r.recent[1:]
	}
}

func (r *lineRelay) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.partial) > 0 {
		r.emit(r.partial)
		r.partial = nil
	}
}

func (r *lineRelay) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.recent, "; ")
}

// syncWriter is the run's stderr: whole lines from many writers, onto a
// destination that can be swapped while they write.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// set sends what is written from now on to w.
func (s *syncWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}
