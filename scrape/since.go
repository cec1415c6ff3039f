package scrape

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

type validatorsKey struct{}

type validators struct{ etag, lastModified string }

// WithValidators gives a fetch the validators of the page's earlier record
// (--since): it sends them as If-None-Match and If-Modified-Since, and a
// 304 answer becomes a record marked Unchanged, with no body and no error.
func WithValidators(ctx context.Context, etag, lastModified string) context.Context {
	if etag == "" && lastModified == "" {
		return ctx
	}
	return context.WithValue(ctx, validatorsKey{}, validators{etag, lastModified})
}

// setValidators adds the conditional headers of ctx's validators to req,
// and reports whether it did.
func setValidators(ctx context.Context, req *http.Request) bool {
	v, ok := ctx.Value(validatorsKey{}).(validators)
	if ok {
		v.set(req)
	}
	return ok
}

// set adds v's conditional headers to req.
func (v validators) set(req *http.Request) {
	if v.etag != "" {
		req.Header.Set("If-None-Match", v.etag)
	}
	if v.lastModified != "" {
		req.Header.Set("If-Modified-Since", v.lastModified)
	}
}

// keepValidators puts the response's validators on the record. A header
// is the site's text: it is kept as valid UTF-8, as Content-Type is.
func keepValidators(res *Result, h http.Header) {
	if v := h.Get("Etag"); v != "" {
		res.ETag = strings.ToValidUTF8(v, "\uFFFD")
	}
	if v := h.Get("Last-Modified"); v != "" {
		res.LastModified = strings.ToValidUTF8(v, "\uFFFD")
	}
}

// bodySum is the record's SHA-256 of a body read whole.
func bodySum(body []byte) string {
	sum := sha256.Sum256(body)
	var h [2 * sha256.Size]byte // on the stack: the string is the one allocation
	hex.Encode(h[:], sum[:])
	return string(h[:])
}
