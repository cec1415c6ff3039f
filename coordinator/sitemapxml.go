package coordinator

import (
	"bufio"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// sitemapMaxBytes bounds what one sitemap file may unpack to. The sitemaps
// protocol caps a file at 50 MB uncompressed (and 50,000 URLs); past the
// bound the file is read no further, and what was read stands. It also
// bounds a gzip bomb.
const sitemapMaxBytes = 64 << 20

// maxSitemapValue bounds one <loc> or <lastmod>: the protocol allows URLs
// of up to 2,048 characters. A longer value is no URL anyone can fetch.
const maxSitemapValue = 4 << 10

// sitemapEntry is one <url> of a urlset, or one <sitemap> of an index.
type sitemapEntry struct {
	loc, lastmod string
}

var errNotSitemap = errors.New("not a sitemap: the root element is neither urlset nor sitemapindex")

// readSitemap reads the sitemap in r, gzipped or not, as it streams: it
// never holds more than one entry, so a file of 50,000 URLs costs no more
// memory than one of ten. It calls fn with each entry, index saying the file
// is a sitemap index (the entries are sitemaps, not pages), until fn returns
// false. Element names are matched without their namespace, as sites write
// them with and without it. The error is the first the file's XML has, or
// errNotSitemap; the entries before it were given to fn.
func readSitemap(r io.Reader, fn func(index bool, e sitemapEntry) bool) error {
	br := bufio.NewReader(r)
	var src io.Reader = br
	// A .xml.gz file is gzip whatever its Content-Type says; a server's
	// Content-Encoding: gzip was undone by the transport already.
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gunzip sitemap: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	d := xml.NewDecoder(io.LimitReader(src, sitemapMaxBytes))
	var (
		index   bool
		rooted  bool
		inEntry bool
		tooLong bool             // the entry has a value over maxSitemapValue: it is dropped, not cut
		depth   int              // of the element being read; the root's is 1
		space   string           // the entry's namespace
		field   *strings.Builder // the <loc> or <lastmod> being read
		loc     strings.Builder
		lastmod strings.Builder
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if !rooted {
				return errNotSitemap
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read sitemap: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			name := t.Name.Local
			// An entry's own fields are its children in its namespace:
			// an extension's <image:loc> inside it is not its <loc>.
			own := inEntry && depth == 3 && t.Name.Space == space
			switch {
			case !rooted:
				switch name {
				case "urlset":
				case "sitemapindex":
					index = true
				default:
					return errNotSitemap
				}
				rooted = true
			case depth == 2 && (name == "url" && !index || name == "sitemap" && index):
				inEntry, space, tooLong = true, t.Name.Space, false
				loc.Reset()
				lastmod.Reset()
			case own && name == "loc":
				field = &loc
			case own && name == "lastmod":
				field = &lastmod
			}
		case xml.CharData:
			if field != nil {
				if field.Len()+len(t) > maxSitemapValue {
					tooLong = true
				} else {
					field.Write(t)
				}
			}
		case xml.EndElement:
			depth--
			switch {
			case depth == 2:
				field = nil
			case depth == 1 && inEntry:
				inEntry, field = false, nil
				e := sitemapEntry{loc: strings.TrimSpace(loc.String()), lastmod: strings.TrimSpace(lastmod.String())}
				if e.loc != "" && !tooLong && !fn(index, e) {
					return nil
				}
			}
		}
	}
}
