// Package warctest serves a site whose bodies tests compare with a run's
// WARC, and reads a WARC back with gowarc's reader, the library the run
// writes it with.
package warctest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nlnwa/gowarc/v3"
)

// BigSize is the length of /big: more than the tests' --max-body.
const BigSize = 600 << 10

// Site serves HTML pages (/page/N), a binary file (/bin), one that goes
// gzipped on the wire (/gz), a 404 with a body of its own (/missing), a
// redirect to /page/0 (/redirect) and a body larger than the tests'
// --max-body (/big). Each path's body is what Body says.
type Site struct {
	pages  int
	bodies map[string][]byte
}

// NewSite makes a Site of pages HTML pages.
func NewSite(pages int) *Site {
	s := &Site{pages: pages, bodies: map[string][]byte{}}
	for i := range pages {
		s.bodies["/page/"+strconv.Itoa(i)] = fmt.Appendf(nil,
			"<!doctype html><html><head><title>Page %d</title></head><body><h1>Page %d</h1><p>%s</p></body></html>\n",
			i, i, strings.Repeat("words ", i*10))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 100<<10)
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	s.bodies["/bin"] = bin
	big := make([]byte, BigSize)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	s.bodies["/big"] = big
	s.bodies["/gz"] = []byte("<!doctype html><title>Zipped</title><p>" + strings.Repeat("zip ", 2000) + "</p>\n")
	s.bodies["/missing"] = []byte("<!doctype html><title>Not here</title><p>nothing at this address</p>\n")
	return s
}

// Paths are the paths of the site that answer with a body, /redirect's
// target aside.
func (s *Site) Paths() []string {
	paths := []string{"/bin", "/big", "/gz", "/missing"}
	for i := range s.pages {
		paths = append(paths, "/page/"+strconv.Itoa(i))
	}
	return paths
}

// Body is what path serves.
func (s *Site) Body(path string) []byte { return s.bodies[path] }

func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/redirect":
		http.Redirect(w, r, "/page/0", http.StatusFound)
		return
	case "/robots.txt":
		http.NotFound(w, r)
		return
	}
	body, ok := s.bodies[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.URL.Path {
	case "/bin", "/big":
		w.Header().Set("Content-Type", "application/octet-stream")
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	if r.URL.Path == "/gz" && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(body)
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zb.Bytes())
		return
	}
	if r.URL.Path == "/missing" {
		w.WriteHeader(http.StatusNotFound)
	}
	w.Write(body)
}

// Record is what a test looks at of one WARC record.
type Record struct {
	Type                                  string
	ID, Target, ConcurrentTo, Warcinfo    string
	Truncated, PayloadDigest, ContentType string
	// Status and Payload are a response's; Block is the whole block of
	// any other record (a request's head, a metadata record's JSON).
	Status  int
	Payload []byte
	Block   []byte
}

// Read reads every record of the WARC at path, strictly: a record whose
// digests or length are wrong, or a file that is not WARC, fails the test.
func Read(t testing.TB, path string) []Record {
	t.Helper()
	r, err := gowarc.NewWarcFileReader(path, 0, gowarc.WithStrictValidation())
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer r.Close()
	var recs []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return recs
		}
		if err != nil {
			t.Fatalf("%s: record %d: %v", path, len(recs)+1, err)
		}
		wr := rec.WarcRecord
		h := wr.WarcHeader()
		got := Record{
			Type: wr.Type().String(), ID: h.Get(gowarc.WarcRecordID), Target: h.Get(gowarc.WarcTargetURI),
			ConcurrentTo: h.Get(gowarc.WarcConcurrentTo), Warcinfo: h.Get(gowarc.WarcWarcinfoID),
			Truncated: h.Get(gowarc.WarcTruncated), PayloadDigest: h.Get(gowarc.WarcPayloadDigest),
			ContentType: h.Get(gowarc.ContentType),
		}
		if _, err := wr.ValidateDigest(); err != nil {
			t.Errorf("%s: record %d (%s %s): %v", path, len(recs)+1, got.Type, got.Target, err)
		}
		if hb, ok := wr.Block().(gowarc.HttpResponseBlock); ok {
			got.Status = hb.HttpStatusCode()
			p, err := hb.PayloadBytes()
			if err == nil {
				got.Payload, err = io.ReadAll(p)
			}
			if err != nil {
				t.Fatalf("%s: record %d: %v", path, len(recs)+1, err)
			}
		} else {
			b, err := wr.Block().RawBytes()
			if err == nil {
				got.Block, err = io.ReadAll(b)
			}
			if err != nil {
				t.Fatalf("%s: record %d: %v", path, len(recs)+1, err)
			}
		}
		rec.Close()
		recs = append(recs, got)
	}
}
