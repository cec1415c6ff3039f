// Package record is the JSON-lines record the baseline and Colly runners
// write: the same fields, names and shapes as scrape's own records, so the
// three tools write comparable amounts of output and are verified alike.
package record

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Error says why a record has no page.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Record is one fetched URL.
type Record struct {
	URL         string    `json:"url"`
	Line        int       `json:"line,omitempty"`
	FinalURL    string    `json:"final_url,omitempty"`
	Status      int       `json:"status,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description,omitempty"`
	Headings    []string  `json:"headings,omitempty"`
	Links       []string  `json:"links,omitempty"`
	Bytes       int64     `json:"bytes"`
	DurationMS  int64     `json:"duration_ms"`
	FetchedAt   time.Time `json:"fetched_at,omitzero"`
	Error       *Error    `json:"error,omitempty"`
}

// Writer writes records as JSON lines; it is safe for concurrent use.
// Records are encoded by the caller's goroutine and only copied under the
// lock, as scrape's coordinator copies records its workers encoded.
type Writer struct {
	mu sync.Mutex
	f  *os.File
	bw *bufio.Writer
}

// Create opens path for writing.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, bw: bufio.NewWriterSize(f, 256<<10)}, nil
}

// Write appends r.
func (w *Writer) Write(r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bw.Write(data)
	return w.bw.WriteByte('\n')
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// URLs streams the non-blank, non-comment lines of r to fn, with their line
// numbers, as scrape reads its urls file.
func URLs(r io.Reader, fn func(line int, url string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		if err := fn(n, text); err != nil {
			return err
		}
	}
	return sc.Err()
}
