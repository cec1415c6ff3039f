package testsite

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"sync"
)

// badBytesPage is an HTML page that declares UTF-8 and is not: stray
// continuation bytes, a truncated sequence, an encoded surrogate and an
// overlong NUL, in the title, the description, a heading and a link.
var badBytesPage = []byte("<!doctype html>\n<html><head><meta charset=\"utf-8\">\n" +
	"<title>Bad \xff\xfe bytes</title>\n" +
	"<meta name=\"description\" content=\"broken \xc3\x28 sequence \xe2\x82\">\n" +
	"</head><body>\n<h1>Surrogate \xed\xa0\x80 here</h1>\n" +
	"<h2>Overlong \xc0\x80 NUL</h2>\n" +
	"<a href=\"/page/\xff\xfe\">bad link</a> <a href=\"/page/1\">good link</a>\n" +
	"<p>" + "\x80\x81\x82\x83 filler " + "</p>\n</body></html>\n")

func (s *Site) badBytes(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(badBytesPage)
}

// GzipBombSize is how many bytes /gzipbomb inflates to: 1 GiB of zeros.
const GzipBombSize = gzipBombMembers * gzipBombMember

const (
	gzipBombMember  = 16 << 20 // zeros per gzip member
	gzipBombMembers = 64
)

var (
	bombOnce sync.Once
	bombBody []byte
)

// gzipBomb is about 1 MiB of gzip that inflates to GzipBombSize bytes. It is
// one member of 16 MiB of zeros, compressed once (some 16 KiB, in tens of
// milliseconds), repeated: a gzip stream may hold several members, which
// readers (Go's included) inflate one after the other.
func gzipBomb() []byte {
	bombOnce.Do(func() {
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		for range gzipBombMember / len(zeros) {
			zw.Write(zeros)
		}
		zw.Close()
		bombBody = bytes.Repeat(member.Bytes(), gzipBombMembers)
	})
	return bombBody
}

func (s *Site) gzipBomb(w http.ResponseWriter) {
	body := gzipBomb()
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}
