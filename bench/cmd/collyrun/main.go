// Command collyrun fetches a urls file with Colly v2: colly.Async with a
// LimitRule of Parallelism N, the same extraction as the baseline (from the
// document Colly parses for its OnHTML callback), one JSON line per URL.
//
//	collyrun -n 64 -o out.jsonl urls.txt
//
// Colly's default HTTP transport keeps 2 idle connections per host, which
// against one host at parallelism 64 means a new TCP connection for most
// requests; like the baseline and scrape, this runner gives it a pool of N
// per host (-pool=false keeps Colly's default).
package main

import (
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gocolly/colly/v2"

	"github.com/scrape-cluster/scrape/bench/internal/extract"
	"github.com/scrape-cluster/scrape/bench/internal/record"
	"github.com/scrape-cluster/scrape/bench/internal/transport"
)

func main() {
	n := flag.Int("n", 64, "pages fetched at once (LimitRule Parallelism)")
	out := flag.String("o", "colly.jsonl", "output file (JSON lines)")
	timeout := flag.Duration("timeout", 30*time.Second, "per-page timeout")
	pool := flag.Bool("pool", true, "give the transport N idle connections per host")
	flag.Parse()
	if flag.NArg() != 1 || *n < 1 {
		log.Fatal("usage: collyrun [-n N] [-o out.jsonl] URLS_FILE")
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

	c := colly.NewCollector(colly.Async(true), colly.MaxBodySize(10<<20))
	if err := c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: *n}); err != nil {
		log.Fatal(err)
	}
	c.SetRequestTimeout(*timeout)
	if *pool {
		c.WithTransport(transport.New(*n))
	}

	var mu sync.Mutex
	var werr error
	write := func(r *record.Record) {
		if err := w.Write(r); err != nil {
			mu.Lock()
			werr = errors.Join(werr, err)
			mu.Unlock()
		}
	}
	// Each request carries its line and start time; OnHTML fills the
	// record, OnScraped (or OnError) writes it: one record per URL.
	c.OnRequest(func(r *colly.Request) {
		r.Ctx.Put("start", time.Now())
	})
	c.OnHTML("html", func(e *colly.HTMLElement) {
		p := extract.From(e.Request.URL, e.DOM)
		rec := base(e.Response)
		rec.Title, rec.Description, rec.Headings, rec.Links = p.Title, p.Description, p.Headings, p.Links
		e.Request.Ctx.Put("record", rec)
	})
	c.OnScraped(func(r *colly.Response) {
		rec, _ := r.Ctx.GetAny("record").(*record.Record)
		if rec == nil {
			rec = base(r)
		}
		write(rec)
	})
	c.OnError(func(r *colly.Response, err error) {
		rec := base(r)
		rec.Error = &record.Error{Kind: "fetch", Message: err.Error()}
		write(rec)
	})

	rerr := record.URLs(in, func(line int, u string) error {
		ctx := colly.NewContext()
		ctx.Put("url", u)
		ctx.Put("line", line)
		if err := c.Request(http.MethodGet, u, nil, ctx, nil); err != nil {
			write(&record.Record{URL: u, Line: line, Error: &record.Error{Kind: "invalid_url", Message: err.Error()}})
		}
		return nil
	})
	c.Wait()
	if err := errors.Join(rerr, werr, w.Close()); err != nil {
		log.Fatal(err)
	}
}

// base is the record of r without the page's fields.
func base(r *colly.Response) *record.Record {
	rec := &record.Record{
		URL:      r.Ctx.Get("url"),
		FinalURL: r.Request.URL.String(),
		Status:   r.StatusCode,
		Bytes:    int64(len(r.Body)),
	}
	rec.Line, _ = r.Ctx.GetAny("line").(int)
	if r.Headers != nil {
		rec.ContentType = r.Headers.Get("Content-Type")
	}
	if start, ok := r.Ctx.GetAny("start").(time.Time); ok {
		rec.FetchedAt = start.UTC()
		rec.DurationMS = time.Since(start).Milliseconds()
	}
	return rec
}
