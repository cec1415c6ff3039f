package output

import (
	"bufio"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/nlnwa/gowarc/v3"

	"github.com/scrape-cluster/scrape/scrape"
)

// WARC is an archive of the pages as fetched (ISO 28500, WARC 1.1), each
// record a gzip member of its own so that a reader can seek to any of them:
// a warcinfo record first, then for every page that got a response its
// request and its response. As the run's output (-o crawl.warc.gz), each
// record goes in too, as a metadata record of JSON, so that every input URL
// is in the file exactly once, with or without a response. Beside another
// output (--warc), the archive holds only the requests and responses.
const WARC Format = "warc"

// Page is what the archive keeps of one record: the URL it is for, when it
// was fetched, and the exchange, when the fetch got a response.
type Page struct {
	URL      string
	Date     time.Time
	Exchange *scrape.Exchange
	// Target is the URL the exchange is for, when it is not URL: where
	// URL's redirects led.
	Target string
	// Resources are a rendered page's other exchanges, each for its own
	// URL: its redirects' hops, its scripts' and styles' requests.
	Resources []scrape.Exchange
}

// PageWriter is a Writer that archives pages: WritePage writes rec and p's
// exchange. Write alone is a record without one.
type PageWriter interface {
	Writer
	WritePage(rec []byte, p Page) error
}

// archiveBuffer is how much of one record gowarc holds in memory before it
// spills to a temporary file: more than the default --max-body, so a page
// never touches the disk twice.
const archiveBuffer = 16 << 20

// Archive writes a WARC file.
type Archive struct {
	dst   io.WriteCloser
	file  *os.File // nil when the destination cannot seek or sync
	count *countingWriter
	bw    *bufio.Writer
	gz    *gzip.Writer
	m     gowarc.Marshaler
	// info is the warcinfo record's ID, which every record names.
	info string
	// records says the archive is the run's output: records go in as
	// metadata.
	records bool
	n       int // records written
	flushed Pos
	closed  bool
}

// CreateArchive creates the WARC at path (Stdout: stdout) and writes its
// warcinfo record of fields, name and value in turn. With records, it is the
// run's output (WARC).
func CreateArchive(path string, stdout io.Writer, records bool, fields [][2]string) (*Archive, error) {
	var a *Archive
	if path == "" || path == Stdout {
		a = newArchive(nopCloser{stdout}, nil, records)
	} else {
		file, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("create archive: %w", err)
		}
		a = newArchive(file, file, records)
	}
	if err := a.writeInfo(filepath.Base(path), fields); err != nil {
		a.Close()
		return nil, fmt.Errorf("create archive: %w", err)
	}
	return a, nil
}

// ResumeArchive reopens the WARC at path where an earlier run's archive
// stood at pos (Pos.Offset, and Pos.Records as the run's output): what
// follows is cut off, as Resume does, and its records go on naming the
// file's warcinfo record. A pos before the end of that record (a run that
// died before its first commit) keeps it.
func ResumeArchive(path string, records bool, pos Pos) (*Archive, error) {
	info, infoEnd, err := archiveInfo(path)
	if err != nil {
		return nil, fmt.Errorf("reopen archive: %w", err)
	}
	pos.Offset = max(pos.Offset, infoEnd)
	file, err := reopen(path, pos.Offset)
	if err != nil {
		return nil, fmt.Errorf("reopen archive: %w", err)
	}
	a := newArchive(file, file, records)
	a.info = info
	a.count.n, a.n, a.flushed = pos.Offset, pos.Records, pos
	return a, nil
}

func newArchive(dst io.WriteCloser, file *os.File, records bool) *Archive {
	a := &Archive{dst: dst, file: file, count: &countingWriter{w: dst}, m: gowarc.NewMarshaler(), records: records}
	a.bw = bufio.NewWriterSize(a.count, 256<<10)
	a.gz, _ = gzip.NewWriterLevel(a.bw, gzip.DefaultCompression)
	return a
}

// archiveInfo is the ID of the warcinfo record path begins with, and the
// offset of its end.
func archiveInfo(path string) (string, int64, error) {
	r, err := gowarc.NewWarcFileReader(path, 0)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil {
		return "", 0, fmt.Errorf("%s: read its warcinfo record: %w", path, err)
	}
	defer rec.Close()
	if rec.WarcRecord.Type() != gowarc.Warcinfo {
		return "", 0, fmt.Errorf("%s begins with a %s record, not warcinfo", path, rec.WarcRecord.Type())
	}
	return rec.WarcRecord.WarcHeader().Get(gowarc.WarcRecordID), rec.Offset + rec.Size, nil
}

func (a *Archive) writeInfo(name string, fields [][2]string) error {
	b := gowarc.NewRecordBuilder(gowarc.Warcinfo, gowarc.WithAddMissingDigest(true))
	a.info = newRecordID()
	b.AddWarcHeader(gowarc.WarcRecordID, a.info)
	b.AddWarcHeaderTime(gowarc.WarcDate, time.Now())
	b.AddWarcHeader(gowarc.ContentType, gowarc.ApplicationWarcFields)
	if name != "" && name != "." && name != Stdout {
		b.AddWarcHeader(gowarc.WarcFilename, name)
	}
	// Written as given: gowarc's WarcFields would capitalise the names
	// the spec writes in camel case (conformsTo, isPartOf).
	for _, f := range fields {
		if _, err := b.WriteString(f[0] + ": " + f[1] + "\r\n"); err != nil {
			return err
		}
	}
	if err := a.put(b); err != nil {
		return err
	}
	return a.Flush()
}

// Write writes rec, a record of no exchange: a metadata record as the run's
// output, nothing beside another.
func (a *Archive) Write(rec []byte) error { return a.WritePage(rec, Page{}) }

// WritePage writes p's request and response, if it has them, and rec as a
// metadata record when the archive is the run's output. The three share
// their date and target, and name each other (WARC-Concurrent-To).
func (a *Archive) WritePage(rec []byte, p Page) error {
	date := p.Date
	if date.IsZero() {
		date = time.Now()
	}
	var resp string
	if ex := p.Exchange; ex != nil {
		resp = newRecordID()
		if err := a.exchange(resp, cmp.Or(p.Target, p.URL), date, ex); err != nil {
			return fmt.Errorf("archive %s: %w", p.URL, err)
		}
	}
	for i := range p.Resources {
		if err := a.exchange(newRecordID(), p.Resources[i].URL, date, &p.Resources[i]); err != nil {
			return fmt.Errorf("archive %s: %s: %w", p.URL, p.Resources[i].URL, err)
		}
	}
	if !a.records {
		return nil
	}
	a.n++
	target := p.URL
	if _, err := scrape.ParseURL(target); err != nil {
		// An input line that is no URL has its record, without a target.
		target = ""
	}
	if err := a.put(a.builder(gowarc.Metadata, newRecordID(), target, date, resp, string(rec), "", func(b gowarc.WarcRecordBuilder) {
		b.AddWarcHeader(gowarc.ContentType, "application/json")
	})); err != nil {
		return fmt.Errorf("archive %s: %w", p.URL, err)
	}
	return nil
}

// exchange writes ex's response, whose record ID is id, and its request,
// which names it.
func (a *Archive) exchange(id, target string, date time.Time, ex *scrape.Exchange) error {
	if err := a.put(a.builder(gowarc.Response, id, target, date, "", ex.Response, ex.Body, func(b gowarc.WarcRecordBuilder) {
		b.AddWarcHeader(gowarc.ContentType, "application/http;msgtype=response")
		if ex.IP != "" {
			b.AddWarcHeader(gowarc.WarcIPAddress, ex.IP)
		}
		if ex.Truncated {
			b.AddWarcHeader(gowarc.WarcTruncated, "length")
		}
	})); err != nil {
		return err
	}
	return a.put(a.builder(gowarc.Request, newRecordID(), target, date, id, ex.Request, "", func(b gowarc.WarcRecordBuilder) {
		b.AddWarcHeader(gowarc.ContentType, "application/http;msgtype=request")
	}))
}

// builder starts a record of type t and the given ID whose block is head
// then body.
func (a *Archive) builder(t gowarc.RecordType, id, target string, date time.Time, concurrent, head, body string, more func(gowarc.WarcRecordBuilder)) gowarc.WarcRecordBuilder {
	b := gowarc.NewRecordBuilder(t, gowarc.WithAddMissingDigest(true), gowarc.WithBufferMaxMemBytes(archiveBuffer))
	b.AddWarcHeader(gowarc.WarcRecordID, id)
	b.AddWarcHeaderTime(gowarc.WarcDate, date)
	if target != "" {
		b.AddWarcHeader(gowarc.WarcTargetURI, target)
	}
	b.AddWarcHeader(gowarc.WarcWarcinfoID, a.info)
	if concurrent != "" {
		b.AddWarcHeader(gowarc.WarcConcurrentTo, concurrent)
	}
	more(b)
	// The builder's writes go to memory (or its temporary file): one that
	// fails shows again in Build.
	_, _ = b.WriteString(head)
	_, _ = b.WriteString(body)
	return b
}

// put builds b's record and writes it as a gzip member of its own.
func (a *Archive) put(b gowarc.WarcRecordBuilder) error {
	rec, _, err := b.Build()
	if err != nil {
		return fmt.Errorf("build record: %w", err)
	}
	defer rec.Close()
	a.gz.Reset(a.bw)
	if _, _, err := a.m.Marshal(a.gz, rec, 0); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return a.gz.Close()
}

// Flush writes what is buffered; the file then ends after a whole record.
func (a *Archive) Flush() error {
	if err := a.bw.Flush(); err != nil {
		return err
	}
	a.flushed = Pos{Offset: a.count.n, Records: a.n}
	return nil
}

// Pos is where the archive stands after the last Flush.
func (a *Archive) Pos() Pos { return a.flushed }

// Close flushes, syncs and closes the file. It may be called more than once.
func (a *Archive) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	err := a.bw.Flush()
	if a.file != nil {
		if fi, serr := a.file.Stat(); serr == nil && fi.Mode().IsRegular() {
			err = errors.Join(err, a.file.Sync())
		}
	}
	return errors.Join(err, a.dst.Close())
}

// newRecordID is a WARC-Record-ID: a random (version 4) UUID as a URN.
func newRecordID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand does not fail
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("<urn:uuid:%x-%x-%x-%x-%x>", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// Archived is a Writer with an archive beside it (--warc): WritePage writes
// the exchange to the archive and the record to the Writer, and the two
// are flushed and closed together. Pos is the Writer's, with the archive's
// offset in Pos.Archive.
type Archived struct {
	Writer
	A *Archive
}

func (w Archived) WritePage(rec []byte, p Page) error {
	if err := w.A.WritePage(rec, p); err != nil {
		return err
	}
	return w.Writer.Write(rec)
}

func (w Archived) Flush() error {
	if err := w.A.Flush(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return w.Writer.Flush()
}

func (w Archived) Pos() Pos {
	pos := w.Writer.Pos()
	pos.Archive = w.A.Pos().Offset
	return pos
}

func (w Archived) Close() error {
	return errors.Join(w.A.Close(), w.Writer.Close())
}

// ArchiveRecords calls each with the records the run's output archive at
// path holds in its first limit bytes (its metadata records of JSON).
func ArchiveRecords(path string, limit int64, each func(rec []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := gowarc.NewWarcFileReaderFromStream(io.LimitReader(f, limit), 0)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.WarcRecord.Type() == gowarc.Metadata && rec.WarcRecord.WarcHeader().Get(gowarc.ContentType) == "application/json" {
			body, err := rec.WarcRecord.Block().RawBytes()
			if err == nil {
				var data []byte
				if data, err = io.ReadAll(body); err == nil {
					err = each(data)
				}
			}
			if err != nil {
				rec.Close()
				return err
			}
		}
		rec.Close()
	}
}
