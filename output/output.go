// Package output writes result records as they arrive. Records reach it
// already encoded as JSON by the worker that made them, so writing one as JSON
// is a copy, never a second encoding; only CSV decodes them, to lay them out
// in columns. A WARC archive (warc.go) takes each page's request and
// response beside its record.
package output

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is an output encoding.
type Format string

const (
	JSON  Format = "json"  // one JSON array
	JSONL Format = "jsonl" // one JSON object per line
	CSV   Format = "csv"   // a header, then one row per record; see csv.go
	// WARC (warc.go) is the fourth.
)

// Stdout is the path that means standard output.
const Stdout = "-"

// FormatFor picks the format: the override when given, else the path's
// extension, else JSON lines (the only format that streams cleanly to a pipe).
func FormatFor(path, override string) (Format, error) {
	if override != "" {
		switch f := Format(strings.ToLower(override)); f {
		case JSON, JSONL, CSV, WARC:
			return f, nil
		}
		return "", fmt.Errorf("unknown format %q (want json, jsonl, csv or warc)", override)
	}
	if strings.HasSuffix(strings.ToLower(path), ".warc.gz") {
		return WARC, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return JSON, nil
	case ".jsonl", ".ndjson":
		return JSONL, nil
	case ".csv":
		return CSV, nil
	}
	return JSONL, nil
}

// Writer receives encoded records. Flush makes what was written so far
// durable and complete on disk: after a Flush the file is valid in its format
// even if the process is killed before the next one.
type Writer interface {
	Write(rec []byte) error
	Flush() error
	Close() error
	// Pos is where the output stands after the last Flush: a run that
	// records it can later Resume the file from there.
	Pos() Pos
}

// Pos is a point in an output file between two records.
type Pos struct {
	Offset  int64 `json:"offset"`  // bytes of the file before the point
	Records int   `json:"records"` // records before the point
	// Archive is the offset of the WARC beside the output (--warc).
	Archive int64 `json:"archive,omitempty"`
}

// Options says what a format needs to know beyond the records.
type Options struct {
	// Fields are the run's --select names, in order: CSV gives each a
	// fields.NAME column. The JSON formats carry fields in the records.
	Fields []string
	// Lastmod (--sitemap) and Data (--structured) give CSV a lastmod and
	// a data column, after the fields: a run without them keeps the
	// columns it always had.
	Lastmod, Data bool
	// Warcinfo are the fields of a WARC's warcinfo record, name and value.
	Warcinfo [][2]string
}

// Create opens path for writing in format f; path Stdout writes to stdout.
// It refuses nothing: callers decide about overwriting before calling it.
func Create(path string, f Format, stdout io.Writer, opt Options) (Writer, error) {
	if f == WARC {
		return CreateArchive(path, stdout, true, opt.Warcinfo)
	}
	if path == "" || path == Stdout {
		return newWriter(f, nopCloser{stdout}, nil, opt), nil
	}
	file, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return newWriter(f, file, file, opt), nil
}

// Resume reopens an output file written by an earlier run at pos, a Pos
// that run's writer reported: whatever follows pos (a record cut short by a
// crash, a closing bracket) is cut off, and writing carries on from there as
// if the earlier writer had never stopped.
func Resume(path string, f Format, opt Options, pos Pos) (Writer, error) {
	if f == WARC {
		return ResumeArchive(path, true, pos)
	}
	file, err := reopen(path, pos.Offset)
	if err != nil {
		return nil, fmt.Errorf("reopen output: %w", err)
	}
	w := newWriter(f, file, file, opt)
	w.resume(pos)
	return w, nil
}

// reopen opens path for writing at offset, with what follows cut off.
func reopen(path string, offset int64) (*os.File, error) {
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err == nil && fi.Size() < offset {
		err = fmt.Errorf("%s has %d bytes, the run had written %d: was it changed?", path, fi.Size(), offset)
	}
	if err == nil {
		err = file.Truncate(offset)
	}
	if err == nil {
		_, err = file.Seek(offset, io.SeekStart)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// resumable is a Writer that can take over a file at a Pos.
type resumable interface {
	Writer
	resume(Pos)
}

func newWriter(f Format, w io.WriteCloser, file *os.File, opt Options) resumable {
	cw := &countingWriter{w: w}
	base := writer{dst: w, file: file, count: cw, bw: bufio.NewWriterSize(cw, 256<<10)}
	switch f {
	case JSON:
		return &arrayWriter{writer: base}
	case CSV:
		return newCSVWriter(base, opt)
	}
	return &linesWriter{writer: base}
}

type writer struct {
	dst     io.WriteCloser
	file    *os.File // nil when the destination cannot seek or sync
	count   *countingWriter
	bw      *bufio.Writer
	closed  bool
	records int // written
	flushed Pos // as of the last Flush
}

// countingWriter counts the bytes that reach the destination through bw.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (w *writer) Pos() Pos { return w.flushed }

// mark records the position once bw is flushed.
func (w *writer) mark() {
	w.flushed = Pos{Offset: w.count.n, Records: w.records}
}

func (w *writer) resume(pos Pos) {
	w.count.n = pos.Offset
	w.records = pos.Records
	w.flushed = pos
}

func (w *writer) close(tail []byte) error {
	if w.closed {
		return nil
	}
	w.closed = true
	_, err := w.bw.Write(tail)
	err = errors.Join(err, w.bw.Flush())
	if w.file != nil {
		// Only a regular file has data to make durable: /dev/null or a
		// pipe refuses fsync.
		if fi, serr := w.file.Stat(); serr == nil && fi.Mode().IsRegular() {
			err = errors.Join(err, w.file.Sync())
		}
	}
	return errors.Join(err, w.dst.Close())
}

type linesWriter struct{ writer }

func (w *linesWriter) Write(rec []byte) error {
	w.records++
	w.bw.Write(rec)
	return w.bw.WriteByte('\n')
}

func (w *linesWriter) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return err
	}
	w.mark()
	return nil
}
func (w *linesWriter) Close() error { return w.close(nil) }

// arrayWriter keeps a file a complete JSON array at every Flush: it writes the
// closing bracket after the last record and steps back over it, so the next
// record overwrites it. An interrupted run therefore leaves valid JSON.
type arrayWriter struct {
	writer
	started bool
}

func (w *arrayWriter) resume(pos Pos) {
	w.writer.resume(pos)
	w.started = pos.Offset > 0 // the opening bracket is in
}

var (
	arrayHead = []byte("[\n")
	arrayTail = []byte("\n]\n")
)

func (w *arrayWriter) begin() {
	if !w.started {
		w.bw.Write(arrayHead)
		w.started = true
	}
}

func (w *arrayWriter) Write(rec []byte) error {
	w.begin()
	if w.records > 0 {
		w.bw.WriteString(",\n")
	}
	w.records++
	_, err := w.bw.Write(rec)
	return err
}

func (w *arrayWriter) Flush() error {
	w.begin()
	if err := w.bw.Flush(); err != nil {
		return err
	}
	// The tail goes around bw, so the count (and Pos) stays before it.
	w.mark()
	if w.file == nil {
		return nil
	}
	if _, err := w.file.Write(arrayTail); err != nil {
		return err
	}
	_, err := w.file.Seek(-int64(len(arrayTail)), io.SeekCurrent)
	return err
}

func (w *arrayWriter) Close() error {
	w.begin()
	return w.close(arrayTail)
}
