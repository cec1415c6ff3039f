package scrape

import (
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
)

// Exchange is what one fetch sent and received, as a WARC archive keeps it
// (Config.Archive): the final request and response of the page, redirects'
// hops not included. The heads are HTTP/1.x text, each line ending in CRLF
// and the head in an empty line; Body is the response's payload as read,
// decoded from the transfer and content encodings, at most MaxBody bytes.
type Exchange struct {
	Request  string
	Response string
	Body     string
	// Truncated says Body is cut short of what the server sent: it reached
	// MaxBody, or the queue's largest message (queue.EncodeResult).
	Truncated bool
	// IP is the address the response came from; empty through a proxy or
	// when it is not known.
	IP string
	// URL is the request's, for an exchange of Result.Resources; the
	// page's own is the record's final URL.
	URL string
}

// requestHead is the request line and headers of req as the client sent
// them. Go's transport adds Accept-Encoding: gzip to a request without one
// (and decodes the answer), so the head says so too.
func requestHead(req *http.Request) string {
	var b strings.Builder
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	b.WriteString(req.Method + " " + req.URL.RequestURI() + " HTTP/1.1\r\nHost: " + host + "\r\n")
	h := req.Header
	if h.Get("Accept-Encoding") == "" && h.Get("Range") == "" && req.Method != http.MethodHead {
		h = h.Clone()
		h.Set("Accept-Encoding", "gzip")
	}
	_ = h.Write(&b) // a strings.Builder does not fail
	b.WriteString("\r\n")
	return b.String()
}

// responseHead is the status line and headers of resp. The transport has
// taken the framing off the body (chunks, and gzip it asked for), and the
// headers that described it with it, so the head fits the body archived.
func responseHead(resp *http.Response) string {
	var b strings.Builder
	proto := resp.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	status := resp.Status
	if status == "" {
		status = statusText(resp.StatusCode)
	}
	b.WriteString(proto + " " + status + "\r\n")
	_ = resp.Header.Write(&b)
	b.WriteString("\r\n")
	return b.String()
}

// remoteIP is the address a fetch's response came from.
type remoteIP struct{ ip string }

// trace has req note the address of each connection it uses: the last is
// the final response's.
func (r *remoteIP) trace(req *http.Request) *http.Request {
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if addr, ok := info.Conn.RemoteAddr().(*net.TCPAddr); ok {
			r.ip = addr.IP.String()
		}
	}}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
}

func (r *remoteIP) String() string {
	if r == nil {
		return ""
	}
	return r.ip
}
