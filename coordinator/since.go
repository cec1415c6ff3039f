package coordinator

import (
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

// An incremental re-crawl (--since PREVIOUS_OUTPUT) reads an earlier run's
// output once, before the run starts, into an index of the pages it
// recorded: for each URL, its validators (ETag, Last-Modified), the SHA-256
// of its body and where its record is in the file. Each task released for
// such a URL carries the validators (frontier.publish), and the worker
// sends them as If-None-Match and If-Modified-Since. The collector then
// (check):
//
//   - a 304 answer: reads the earlier record back from the file and copies
//     its page (final URL, type, title, description, headings, links,
//     fields, text, data, sum) into the record, marked unchanged, so the new
//     output is whole by itself, a crawl follows the page's links as before,
//     and the output can be the next run's --since;
//   - a page served whole whose SHA-256 is the earlier one: marks it
//     unchanged (a site without validators still saves the output's
//     readers a comparison, if not the transfer).
//
// The earlier output can be large: the index keeps, per page, a 64-bit
// hash of its URL and a fixed struct with the ETag's own string, about 100
// bytes, and no other part of the record. A hash that two URLs share is
// caught where it matters, on the read-back, by the record's own URL; the
// validators sent in its name are at worst not the page's, which its site
// answers with the page.

// maxSinceETag bounds the ETags kept: a real one is a few dozen bytes.
const maxSinceETag = 512

// sinceIndex is the --since output's pages.
type sinceIndex struct {
	prev  *output.Previous
	seed  maphash.Seed
	pages map[uint64]sincePage
	// lost counts the 304s whose earlier record could not be read back;
	// the first is logged. Only the collector touches it.
	lost int
}

// sincePage is one URL's earlier record.
type sincePage struct {
	off      int64  // where its record is in the file
	modified int64  // its Last-Modified, Unix seconds; 0: none
	etag     string // its ETag; "": none
	sum      [32]byte
	hasSum   bool
}

// openSince reads the --since output into its index; nil without one. The
// run's own output must be another file: it is created anew before the
// earlier one is read back.
func (c *Coordinator) openSince() (*sinceIndex, error) {
	path := c.cfg.Since
	if path == "" {
		return nil, nil
	}
	if c.cfg.Output != "" && c.cfg.Output != output.Stdout {
		a, aerr := os.Stat(path)
		b, berr := os.Stat(c.cfg.Output)
		if aerr == nil && berr == nil && os.SameFile(a, b) {
			return nil, fmt.Errorf("--since %s is the run's own output: write the re-crawl to another file", path)
		}
	}
	start := time.Now()
	idx, err := loadSince(path)
	if err != nil {
		return nil, err
	}
	c.log.Info("read the --since output", "path", path, "format", idx.prev.Format(), "pages", len(idx.pages), "took", time.Since(start).Round(time.Millisecond))
	return idx, nil
}

// loadSince indexes the pages of the output at path: the records without
// an error that have a validator or a sum.
func loadSince(path string) (*sinceIndex, error) {
	prev, err := output.OpenPrevious(path)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	idx := &sinceIndex{prev: prev, seed: maphash.MakeSeed(), pages: map[uint64]sincePage{}}
	err = prev.Scan(func(r output.PreviousRecord) error {
		if r.Failed {
			return nil
		}
		p := sincePage{off: r.Offset}
		if r.ETag != "" && len(r.ETag) <= maxSinceETag && httpguts.ValidHeaderFieldValue(r.ETag) {
			// Its own copy: a CSV row's strings share one.
			p.etag = strings.Clone(r.ETag)
		}
		if t, err := http.ParseTime(r.LastModified); err == nil && t.Unix() > 0 {
			p.modified = t.Unix()
		}
		if len(r.SHA256) == 2*len(p.sum) {
			_, err := hex.Decode(p.sum[:], []byte(r.SHA256))
			p.hasSum = err == nil
		}
		if p.etag == "" && p.modified == 0 && !p.hasSum {
			return nil // nothing to compare the page with
		}
		idx.pages[maphash.String(idx.seed, r.URL)] = p
		return nil
	})
	if err != nil {
		prev.Close()
		return nil, fmt.Errorf("--since: %w", err)
	}
	return idx, nil
}

func (s *sinceIndex) close() error {
	if s == nil {
		return nil
	}
	return s.prev.Close()
}

func (s *sinceIndex) page(url string) (sincePage, bool) {
	p, ok := s.pages[maphash.String(s.seed, url)]
	return p, ok
}

// validators gives t its URL's earlier validators.
func (s *sinceIndex) validators(t *scrape.Task) {
	p, ok := s.page(t.URL)
	if !ok {
		return
	}
	t.ETag = p.etag
	if p.modified != 0 {
		t.LastModified = time.Unix(p.modified, 0).UTC().Format(http.TimeFormat)
	}
}

// apply compares the record r of task's URL with its earlier one (see
// the top of this file). A 304 whose earlier record cannot be read back is
// written as it came, unchanged but without the page, and logged.
// structured says the run keeps data (--structured).
func (s *sinceIndex) apply(r *scrape.Result, task scrape.Task, structured bool, log *slog.Logger) {
	p, ok := s.page(task.URL)
	if !ok {
		return
	}
	if !r.Unchanged {
		if r.Error == nil && p.hasSum && sameSum(r.SHA256, &p.sum) {
			r.Unchanged = true
		}
		return
	}
	earlier, err := s.prev.ReadAt(p.off)
	if err == nil && earlier.URL != task.URL {
		err = fmt.Errorf("the record there is %s's", earlier.URL)
	}
	if err != nil {
		if s.lost++; s.lost == 1 {
			// A file changed under the run fails every read alike.
			log.Warn("--since: the earlier record of an unchanged page cannot be read back: written without its fields; further ones are not logged", "url", task.URL, "err", err)
		}
		return
	}
	if r.FinalURL == "" {
		r.FinalURL = earlier.FinalURL
	}
	if r.ContentType == "" {
		r.ContentType = earlier.ContentType
	}
	r.Title, r.Description = earlier.Title, earlier.Description
	r.Headings, r.Links = earlier.Headings, earlier.Links
	r.Fields, r.Text = earlier.Fields, earlier.Text
	// The fields are the DOM's if the earlier record was rendered.
	r.Rendered = earlier.Rendered
	if structured {
		r.Data = earlier.Data
	}
	// A 304 may leave out the validators; the earlier ones still hold.
	if r.ETag == "" {
		r.ETag = earlier.ETag
	}
	if r.LastModified == "" {
		r.LastModified = earlier.LastModified
	}
	r.SHA256 = earlier.SHA256
}

// sameSum reports whether the hex sum is sum.
func sameSum(hexSum string, sum *[32]byte) bool {
	if len(hexSum) != 2*len(sum) {
		return false
	}
	for i, b := range sum {
		if hexSum[2*i] != hexDigits[b>>4] || hexSum[2*i+1] != hexDigits[b&0xf] {
			return false
		}
	}
	return true
}
