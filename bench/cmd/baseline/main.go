// Command baseline is the plain-Go ceiling for one machine: one process, a
// pool of N goroutines, net/http with a connection pool sized for them, and
// goquery extraction of the same fields scrape extracts. It reads a urls file
// and writes one JSON line per URL.
//
//	baseline -n 64 -o out.jsonl urls.txt
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/scrape-cluster/scrape/bench/internal/extract"
	"github.com/scrape-cluster/scrape/bench/internal/record"
	"github.com/scrape-cluster/scrape/bench/internal/transport"
)

const maxBody = 10 << 20

func main() {
	n := flag.Int("n", 64, "pages fetched at once")
	out := flag.String("o", "baseline.jsonl", "output file (JSON lines)")
	timeout := flag.Duration("timeout", 30*time.Second, "per-page timeout")
	flag.Parse()
	if flag.NArg() != 1 || *n < 1 {
		log.Fatal("usage: baseline [-n N] [-o out.jsonl] URLS_FILE")
	}
	in, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	w, err := record.Create(*out)
	if err != nil {
		log.Fatal(err)
	}

	client := &http.Client{Transport: transport.New(*n)}

	type task struct {
		line int
		url  string
	}
	tasks := make(chan task, *n)
	var wg sync.WaitGroup
	var werr error
	var once sync.Once
	for range *n {
		wg.Go(func() {
			buf := new(bytes.Buffer)
			for t := range tasks {
				r := fetch(client, *timeout, t.url, buf)
				r.Line = t.line
				if err := w.Write(r); err != nil {
					once.Do(func() { werr = err })
				}
			}
		})
	}
	rerr := record.URLs(in, func(line int, u string) error {
		tasks <- task{line, u}
		return nil
	})
	close(tasks)
	wg.Wait()
	if err := errors.Join(rerr, werr, w.Close()); err != nil {
		log.Fatal(err)
	}
}

func fetch(client *http.Client, timeout time.Duration, raw string, buf *bytes.Buffer) *record.Record {
	start := time.Now()
	r := &record.Record{URL: raw, FetchedAt: start.UTC()}
	defer func() { r.DurationMS = time.Since(start).Milliseconds() }()
	fail := func(kind string, err error) *record.Record {
		r.Error = &record.Error{Kind: kind, Message: err.Error()}
		return r
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fail("invalid_url", fmt.Errorf("%q: not an http(s) URL", raw))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fail("invalid_url", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail("fetch", err)
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	r.FinalURL = resp.Request.URL.String()
	r.ContentType = resp.Header.Get("Content-Type")
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	r.Bytes = n
	if err != nil {
		return fail("bad_body", err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return fail("bad_body", err)
	}
	p := extract.From(resp.Request.URL, doc.Selection)
	r.Title, r.Description, r.Headings, r.Links = p.Title, p.Description, p.Headings, p.Links
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.Error = &record.Error{Kind: "http_status", Message: resp.Status}
	}
	return r
}
