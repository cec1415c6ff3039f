package coordinator

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scrape-cluster/scrape/scrape"
)

// appendRecord appends the JSON of r, byte for byte what json.Marshal makes
// of it (FuzzAppendRecord holds the two together). The collector encodes
// every record it writes; through reflection that was a tenth of its CPU
// per page.
func appendRecord(b []byte, r *scrape.Result) ([]byte, error) {
	if y := r.FetchedAt.Year(); !r.FetchedAt.IsZero() && (y < 0 || y > 9999) {
		// Out of what MarshalJSON takes: let json.Marshal say so.
		rec, err := json.Marshal(r)
		return append(b, rec...), err
	}
	b = append(b, `{"url":`...)
	b = appendString(b, r.URL)
	b = optInt(b, `,"line":`, int64(r.Line))
	b = optString(b, `,"final_url":`, r.FinalURL)
	b = optInt(b, `,"status":`, int64(r.Status))
	b = optString(b, `,"content_type":`, r.ContentType)
	b = optString(b, `,"title":`, r.Title)
	b = optString(b, `,"description":`, r.Description)
	if len(r.Headings) > 0 {
		b = appendStrings(append(b, `,"headings":`...), r.Headings)
	}
	if len(r.Links) > 0 {
		b = appendStrings(append(b, `,"links":`...), r.Links)
	}
	if len(r.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		for i, k := range slices.Sorted(maps.Keys(r.Fields)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, k), ':')
			b = appendStrings(b, r.Fields[k])
		}
		b = append(b, '}')
	}
	b = optString(b, `,"text":`, r.Text)
	if len(r.Data) > 0 {
		var ok bool
		if b, ok = appendData(append(b, `,"data":`...), r.Data); !ok {
			rec, err := json.Marshal(r) // let json.Marshal say why
			return append(b, rec...), err
		}
	}
	b = optString(b, `,"lastmod":`, r.Lastmod)
	b = optString(b, `,"etag":`, r.ETag)
	b = optString(b, `,"last_modified":`, r.LastModified)
	b = optString(b, `,"sha256":`, r.SHA256)
	if r.Unchanged {
		b = append(b, `,"unchanged":true`...)
	}
	b = optInt(b, `,"depth":`, int64(r.Depth))
	b = optString(b, `,"parent":`, r.Parent)
	b = strconv.AppendInt(append(b, `,"bytes":`...), r.Bytes, 10)
	b = strconv.AppendInt(append(b, `,"duration_ms":`...), r.DurationMS, 10)
	if !r.FetchedAt.IsZero() {
		b = append(r.FetchedAt.AppendFormat(append(b, `,"fetched_at":"`...), time.RFC3339Nano), '"')
	}
	b = optString(b, `,"node":`, r.Node)
	b = optString(b, `,"worker":`, r.Worker)
	b = optString(b, `,"proxy":`, r.Proxy)
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(r.Attempts), 10)
	if r.Rendered {
		b = append(b, `,"rendered":true`...)
	}
	b = optString(b, `,"needs_render":`, r.NeedsRender)
	if r.Error != nil {
		b = appendString(append(b, `,"error":{"kind":`...), r.Error.Kind)
		b = appendString(append(b, `,"message":`...), r.Error.Message)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendData writes data as encoding/json writes a json.RawMessage:
// compact, with <, > and & escaped. It reports false for data that is no
// JSON.
func appendData(b []byte, data []byte) ([]byte, bool) {
	var c bytes.Buffer
	if err := json.Compact(&c, data); err != nil {
		return b, false
	}
	var e bytes.Buffer
	json.HTMLEscape(&e, c.Bytes())
	return append(b, e.Bytes()...), true
}

func optInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

func optString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendStrings writes a list as encoding/json does: nil is null.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does, HTML escaping included:
// <, > and & as \u003c, \u003e and \u0026, invalid UTF-8 as \ufffd, and
// U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
