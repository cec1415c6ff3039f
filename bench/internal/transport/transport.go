// Package transport is the HTTP transport every tool of the benchmark
// fetches with, so that no tool wins or loses by its connection pool.
package transport

import (
	"net"
	"net/http"
	"time"
)

// New keeps n idle connections per host: as many as pages in flight, so that
// no request waits to reopen one.
func New(n int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        max(100, n),
		MaxIdleConnsPerHost: n,
		IdleConnTimeout:     60 * time.Second,
	}
}
