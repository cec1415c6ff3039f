// Command benchsite serves the benchmark's local test site: deterministic
// ~12 KB article pages at /page/0 .. /page/N-1, each with a title, a meta
// description, an h1 and 20 links, optionally after an added latency. It
// prints its base URL on the first line of standard output, then serves until
// SIGTERM or SIGINT, when it shuts down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scrape-cluster/scrape/bench/internal/site"
)

func main() {
	pages := flag.Int("pages", 10000, "number of pages (/page/0 .. /page/N-1)")
	latency := flag.Duration("latency", 0, "added latency before every response, e.g. 100ms")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if *pages < 1 {
		log.Fatal("benchsite: -pages must be at least 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("benchsite: %v", err)
	}
	srv := &http.Server{
		Handler:           site.New(*pages, *latency),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Printf("http://%s\n", ln.Addr())
	os.Stdout.Sync()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		log.Fatalf("benchsite: %v", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Printf("benchsite: shutdown: %v", err)
	}
}
