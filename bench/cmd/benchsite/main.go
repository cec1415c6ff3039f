// Command benchsite serves the benchmark's local test site: deterministic
// ~12 KB article pages at /page/0 .. /page/N-1, each with a title, a meta
// description, an h1 and 20 links, and a robots.txt that allows them all,
// optionally after an added latency. /_served tells the bytes of page bodies
// served so far; with -validators pages have an ETag and a Last-Modified and
// a request naming them gets a 304 without a body. It prints its base URL on the first line
// of standard output, then serves until SIGTERM or SIGINT, when it shuts down
// gracefully.
//
// With -hosts N it is N sites in one: it listens on the loopback addresses
// 127.0.0.2 to 127.0.0.N+1 (all of 127/8 is loopback on Linux), on one port,
// and prints the N base URLs on its first line, separated by spaces. Each
// address is a host of its own to a crawler's per-host limits, without
// names to resolve.
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
	"strings"
	"syscall"
	"time"

	"github.com/scrape-cluster/scrape/bench/internal/site"
)

func main() {
	pages := flag.Int("pages", 10000, "number of pages (/page/0 .. /page/N-1)")
	latency := flag.Duration("latency", 0, "added latency before every response, e.g. 100ms")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	hosts := flag.Int("hosts", 0, "listen on this many loopback addresses from 127.0.0.2 on, one port, instead of -addr")
	validators := flag.Bool("validators", false, "give pages an ETag and a Last-Modified, and answer 304 to them")
	flag.Parse()
	if *pages < 1 {
		log.Fatal("benchsite: -pages must be at least 1")
	}
	if *hosts < 0 || *hosts > 250 {
		log.Fatal("benchsite: -hosts must be 0 to 250")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lns, err := listen(*addr, *hosts)
	if err != nil {
		log.Fatalf("benchsite: %v", err)
	}
	ws := site.New(*pages, *latency)
	ws.Validators = *validators
	srv := &http.Server{
		Handler:           ws,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	bases := make([]string, len(lns))
	for i, ln := range lns {
		bases[i] = "http://" + ln.Addr().String()
	}
	fmt.Println(strings.Join(bases, " "))
	os.Stdout.Sync()

	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
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

// listen opens addr, or with hosts > 0 that many loopback addresses from
// 127.0.0.2 on, all on the port the first one got.
func listen(addr string, hosts int) ([]net.Listener, error) {
	if hosts == 0 {
		ln, err := net.Listen("tcp", addr)
		return []net.Listener{ln}, err
	}
	// The port the first address got may be taken on another; a few tries
	// with a new port find one free on all of them.
	var lastErr error
	for range 10 {
		first, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			return nil, err
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for i := 1; i < hosts; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i+2, port))
			if err != nil {
				lastErr = err
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == hosts {
			return lns, nil
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	return nil, fmt.Errorf("no port free on 127.0.0.2 to 127.0.0.%d: %w", hosts+1, lastErr)
}
