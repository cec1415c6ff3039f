package output

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/scrape"
)

// csvColumns are the fixed columns of a CSV file, in order; one fields.NAME
// column per --select name follows them. They are part of the output format:
// a column is never renamed or moved once released, only added at the end.
var csvColumns = []string{
	"url", "line", "final_url", "status", "content_type", "title", "description",
	"headings", "links", "bytes", "duration_ms", "fetched_at", "node", "worker",
	"attempts", "depth", "parent", "error_kind", "error_message", "text",
}

// ListSeparator joins the values of a list (headings, links, each custom
// field) in one CSV cell: one value per line, as a spreadsheet shows a
// multi-line cell. Splitting the cell on it gives the list back. Headings,
// links, text values and URL attributes never contain a line break; a raw
// attribute value that does has each CR and LF written as a space, so that the
// split stays exact. An empty cell is an empty list (or, indistinguishably,
// one empty value).
const ListSeparator = "\n"

// FieldColumn is the CSV column of the --select field name.
func FieldColumn(name string) string { return "fields." + name }

// csvWriter writes a header row, then one row per record. A record arrives as
// the JSON of a scrape.Result and is decoded only long enough to be written:
// nothing is kept from one record to the next but the reused row, so memory
// does not grow with the number of records.
//
// Cells are the record's values as they are, formula-like ones included
// ("=cmd|..."): this is a data format, and a spreadsheet that evaluates cells
// of scraped text should be told to import them as text.
type csvWriter struct {
	writer
	cw      *csv.Writer
	fields  []string
	lastmod bool
	data    bool
	row     []string
	started bool
}

func (w *csvWriter) resume(pos Pos) {
	w.writer.resume(pos)
	w.started = pos.Offset > 0 // the header is in
}

func newCSVWriter(base writer, opt Options) *csvWriter {
	return &csvWriter{
		writer:  base,
		cw:      csv.NewWriter(base.bw),
		fields:  opt.Fields,
		lastmod: opt.Lastmod,
		data:    opt.Data,
		row:     make([]string, len(csvColumns)+len(opt.Fields)+2+len(sinceColumns)),
	}
}

// DataColumn is the CSV column of a record's structured data (--structured):
// the record's data object as compact JSON in one cell, empty when the page
// has none. Nested items do not flatten into columns without losing their
// order and nesting; one JSON cell keeps them whole and reads back with any
// JSON parser (a spreadsheet's, jq's).
const DataColumn = "data"

// LastmodColumn is the CSV column of a sitemap entry's <lastmod> (--sitemap).
const LastmodColumn = "lastmod"

// sinceColumns end every CSV row, after the optional columns: a record's
// validators, its body's sum and its unchanged flag ("true" or empty),
// which a later run's --since reads back (previous.go).
var sinceColumns = []string{"etag", "last_modified", "sha256", "unchanged"}

// begin writes the header, once, before anything else: a file with no
// records still says what its columns are.
func (w *csvWriter) begin() error {
	if w.started {
		return nil
	}
	w.started = true
	header := append(w.row[:0], csvColumns...)
	for _, name := range w.fields {
		header = append(header, FieldColumn(name))
	}
	if w.lastmod {
		header = append(header, LastmodColumn)
	}
	if w.data {
		header = append(header, DataColumn)
	}
	header = append(header, sinceColumns...)
	return w.cw.Write(header)
}

func (w *csvWriter) Write(rec []byte) error {
	if err := w.begin(); err != nil {
		return err
	}
	var r scrape.Result
	if err := json.Unmarshal(rec, &r); err != nil {
		return fmt.Errorf("csv: decode record: %w", err)
	}
	row := w.row[:0]
	var kind, msg string
	if r.Error != nil {
		kind, msg = r.Error.Kind, r.Error.Message
	}
	var fetchedAt string
	if !r.FetchedAt.IsZero() {
		fetchedAt = r.FetchedAt.UTC().Format(time.RFC3339Nano)
	}
	// Numbers the JSON leaves out when zero are empty cells here too.
	row = append(row,
		r.URL, optInt(r.Line), r.FinalURL, optInt(r.Status), r.ContentType, r.Title, r.Description,
		joinList(r.Headings), joinList(r.Links), strconv.FormatInt(r.Bytes, 10),
		strconv.FormatInt(r.DurationMS, 10), fetchedAt, r.Node, r.Worker,
		strconv.Itoa(r.Attempts), optInt(r.Depth), r.Parent, kind, msg, r.Text,
	)
	for _, name := range w.fields {
		row = append(row, joinList(r.Fields[name]))
	}
	if w.lastmod {
		row = append(row, r.Lastmod)
	}
	if w.data {
		row = append(row, string(r.Data))
	}
	var unchanged string
	if r.Unchanged {
		unchanged = "true"
	}
	row = append(row, r.ETag, r.LastModified, r.SHA256, unchanged)
	w.records++
	return w.cw.Write(row)
}

func optInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

var lineBreaks = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

func joinList(values []string) string {
	switch len(values) {
	case 0:
		return ""
	case 1:
		return oneLine(values[0])
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteString(ListSeparator)
		}
		b.WriteString(oneLine(v))
	}
	return b.String()
}

func oneLine(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		return lineBreaks.Replace(v)
	}
	return v
}

// Flush writes every complete row so far to the destination: after it, the
// file ends with a whole row and reads as valid CSV. (The csv.Writer adopts
// w.bw as its buffer, since bufio.NewWriter returns a large enough
// *bufio.Writer as it is, so its Flush already reaches the file; flushing both
// does not depend on that.)
func (w *csvWriter) Flush() error {
	if err := w.begin(); err != nil {
		return err
	}
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	w.mark()
	return nil
}

func (w *csvWriter) Close() error {
	if w.closed {
		return nil
	}
	err := w.begin()
	w.cw.Flush()
	return errors.Join(err, w.cw.Error(), w.close(nil))
}
