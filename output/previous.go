package output

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/scrape-cluster/scrape/scrape"
)

// Previous is an earlier run's output read back (--since): once through,
// by Scan, for each record's URL, validators and body sum; then, by ReadAt,
// the one record at a time that a re-crawl needs whole. Nothing of the file
// is held in memory but a CSV file's header: a million-record output costs
// what its caller keeps of each record.
type Previous struct {
	path   string
	file   *os.File
	format Format
	// header is a CSV file's columns, by which its rows are read.
	header []string
}

// PreviousRecord is what Scan hands on of one record. Its strings may
// share memory with the whole record (a CSV row is one string): clone
// what is kept.
type PreviousRecord struct {
	URL, ETag, LastModified, SHA256 string
	// Failed says the record has an error: its page is no page to keep.
	Failed bool
	// Offset is where the record starts, for ReadAt.
	Offset int64
}

// PreviousError is a previous output that cannot be read, and the line of
// the file it fails on.
type PreviousError struct {
	Path string
	Line int
	Err  error
}

func (e *PreviousError) Error() string {
	return fmt.Sprintf("read %s: line %d: %v", e.Path, e.Line, e.Err)
}

func (e *PreviousError) Unwrap() error { return e.Err }

// OpenPrevious opens the output of an earlier run. Its format is what its
// first byte says, whatever its name: '[' a JSON array, '{' JSON lines,
// anything else CSV with its header.
func OpenPrevious(path string) (*Previous, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open previous output: %w", err)
	}
	p := &Previous{path: path, file: file, format: CSV}
	head := make([]byte, 4096)
	n, err := file.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		file.Close()
		return nil, fmt.Errorf("read previous output %s: %w", path, err)
	}
	switch first := bytes.TrimLeft(head[:n], " \t\r\n"); {
	case len(first) == 0, first[0] == '{':
		p.format = JSONL
	case first[0] == '[':
		p.format = JSON
	}
	return p, nil
}

// Format is the format the file was read as.
func (p *Previous) Format() Format { return p.format }

// Close closes the file.
func (p *Previous) Close() error { return p.file.Close() }

// Scan calls each for every record of the file, in order. A file that is
// not an output of this program's formats is a *PreviousError naming the
// line it fails on, as is a record without a url.
func (p *Previous) Scan(each func(PreviousRecord) error) error {
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: %w", p.path, err)
	}
	if p.format == CSV {
		return p.scanCSV(each)
	}
	return p.scanJSON(each)
}

// previousJSON is what Scan decodes of a JSON record; the rest of it is
// skipped.
type previousJSON struct {
	URL          string `json:"url"`
	ETag         string `json:"etag"`
	LastModified string `json:"last_modified"`
	SHA256       string `json:"sha256"`
	Error        *struct {
		Kind string `json:"kind"`
	} `json:"error"`
}

func (p *Previous) scanJSON(each func(PreviousRecord) error) error {
	dec := json.NewDecoder(bufio.NewReaderSize(p.file, 256<<10))
	if p.format == JSON {
		if _, err := dec.Token(); err != nil { // the '[' OpenPrevious saw
			return p.jsonError(0, err)
		}
	}
	for {
		if p.format == JSON && !dec.More() {
			break
		}
		start := dec.InputOffset()
		var rec previousJSON
		err := dec.Decode(&rec)
		if p.format == JSONL && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return p.jsonError(start, err)
		}
		if rec.URL == "" {
			return p.lineError(p.valueStart(start), errors.New("a record without url"))
		}
		if err := each(PreviousRecord{URL: rec.URL, ETag: rec.ETag, LastModified: rec.LastModified,
			SHA256: rec.SHA256, Failed: rec.Error != nil, Offset: start}); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return p.jsonError(dec.InputOffset(), err)
	}
	return nil
}

// jsonError places a decoding error of the value that begins after start
// (after the space and comma before it): a syntax error at its own byte,
// any other at the value's first. It is counted only now, on the way out.
func (p *Previous) jsonError(start int64, err error) error {
	pos := p.valueStart(start)
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		err = errors.New("unexpected end of file (cut short?)")
		pos = p.lastByte()
	case errors.As(err, &syn):
		// A decoder's offsets count from where it started, less the
		// tokens it read apart: decoding the value alone places its error.
		var v any
		again := json.NewDecoder(io.NewSectionReader(p.file, pos, 1<<62)).Decode(&v)
		if errors.As(again, &syn) && syn.Offset > 0 {
			pos += syn.Offset - 1
		}
	}
	return p.lineError(pos, err)
}

// lastByte is where the file's last byte that is not space is: where a
// file cut short was cut.
func (p *Previous) lastByte() int64 {
	fi, err := p.file.Stat()
	if err != nil {
		return 0
	}
	size := fi.Size()
	tail := make([]byte, min(size, 4096))
	n, _ := p.file.ReadAt(tail, size-int64(len(tail)))
	return max(size-int64(len(tail))+int64(len(bytes.TrimRight(tail[:n], " \t\r\n")))-1, 0)
}

// valueStart is the first byte at or after off that is neither space nor
// the comma between two values of an array.
func (p *Previous) valueStart(off int64) int64 {
	r := bufio.NewReader(io.NewSectionReader(p.file, off, 1<<62))
	for {
		c, err := r.ReadByte()
		if err != nil || (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != ',') {
			return off
		}
		off++
	}
}

// lineError is err at the line of the byte at pos.
func (p *Previous) lineError(pos int64, err error) error {
	line := 1
	r := bufio.NewReader(io.NewSectionReader(p.file, 0, pos))
	for {
		c, rerr := r.ReadByte()
		if rerr != nil {
			break
		}
		if c == '\n' {
			line++
		}
	}
	return &PreviousError{Path: p.path, Line: line, Err: err}
}

func (p *Previous) scanCSV(each func(PreviousRecord) error) error {
	cr := csv.NewReader(bufio.NewReaderSize(p.file, 256<<10))
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil // an empty file: no records
	}
	if err != nil {
		return p.csvError(err)
	}
	p.header = append([]string(nil), header...)
	col := func(name string) int {
		for i, h := range p.header {
			if h == name {
				return i
			}
		}
		return -1
	}
	urlCol, kindCol := col("url"), col("error_kind")
	etagCol, modCol, sumCol := col("etag"), col("last_modified"), col("sha256")
	if urlCol < 0 {
		return &PreviousError{Path: p.path, Line: 1, Err: fmt.Errorf("no url column in the header %q: neither JSON nor this program's CSV", strings.Join(p.header, ","))}
	}
	cell := func(row []string, i int) string {
		if i < 0 {
			return ""
		}
		return row[i]
	}
	for {
		start := cr.InputOffset()
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return p.csvError(err)
		}
		if row[urlCol] == "" {
			line, _ := cr.FieldPos(urlCol)
			return &PreviousError{Path: p.path, Line: line, Err: errors.New("a record without url")}
		}
		if err := each(PreviousRecord{URL: row[urlCol], ETag: cell(row, etagCol), LastModified: cell(row, modCol),
			SHA256: cell(row, sumCol), Failed: cell(row, kindCol) != "", Offset: start}); err != nil {
			return err
		}
	}
}

func (p *Previous) csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		// The record's first line: a quote left open runs on past it.
		return &PreviousError{Path: p.path, Line: cmp.Or(pe.StartLine, pe.Line), Err: pe.Err}
	}
	return fmt.Errorf("read %s: %w", p.path, err)
}

// ReadAt reads the record Scan found at off. Of a CSV row it reads the
// page's columns (url, final_url, status, content_type, title, description,
// headings, links, text, the fields, lastmod, data and the --since
// columns), which is what a re-crawl copies from it.
func (p *Previous) ReadAt(off int64) (scrape.Result, error) {
	var r scrape.Result
	if p.format == CSV {
		return p.readCSV(bufio.NewReader(io.NewSectionReader(p.file, off, 1<<62)))
	}
	// Scan's offset is where the decoder stood: before the comma and
	// the line break that lead to the record, which a decoder of the
	// record alone does not expect.
	if err := json.NewDecoder(io.NewSectionReader(p.file, p.valueStart(off), 1<<62)).Decode(&r); err != nil {
		return r, fmt.Errorf("read %s at %d: %w", p.path, off, err)
	}
	return r, nil
}

func (p *Previous) readCSV(br *bufio.Reader) (scrape.Result, error) {
	var r scrape.Result
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = len(p.header)
	row, err := cr.Read()
	if err != nil {
		return r, fmt.Errorf("read %s: %w", p.path, err)
	}
	list := func(cell string) []string {
		if cell == "" {
			return nil
		}
		return strings.Split(cell, ListSeparator)
	}
	for i, name := range p.header {
		v := row[i]
		switch name {
		case "url":
			r.URL = v
		case "final_url":
			r.FinalURL = v
		case "status":
			r.Status, _ = strconv.Atoi(v)
		case "content_type":
			r.ContentType = v
		case "title":
			r.Title = v
		case "description":
			r.Description = v
		case "headings":
			r.Headings = list(v)
		case "links":
			r.Links = list(v)
		case "text":
			r.Text = v
		case LastmodColumn:
			r.Lastmod = v
		case DataColumn:
			if v != "" {
				r.Data = json.RawMessage(v)
			}
		case "etag":
			r.ETag = v
		case "last_modified":
			r.LastModified = v
		case "sha256":
			r.SHA256 = v
		case "unchanged":
			r.Unchanged = v == "true"
		default:
			if field, ok := strings.CutPrefix(name, "fields."); ok {
				if r.Fields == nil {
					r.Fields = map[string][]string{}
				}
				// An empty cell is an empty list (ListSeparator).
				r.Fields[field] = append([]string{}, list(v)...)
			}
		}
	}
	return r, nil
}
