package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// TestRunTLS: a run with --tls completes over the workers it starts itself,
// which check the queue by the pin in their bootstrap.
func TestRunTLS(t *testing.T) {
	cmd, out, want, stderr := slowRun(t, 40, 20*time.Millisecond, "localhost:3\n127.0.0.1:3\n", "--tls")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run --tls: %v\n%s", err, stderr.String())
	}
	perNode := map[string]int{}
	for line, r := range byLine(t, readJSON(t, out), want) {
		perNode[r.Node]++
		if r.Error != nil || r.Title == "" {
			t.Errorf("line %d: %+v", line, r.Result)
		}
	}
	if perNode["localhost"] == 0 || perNode["127.0.0.1"] == 0 {
		t.Errorf("pages per node %v: both workers should have worked over TLS", perNode)
	}
}

// tapProxy forwards TCP connections to target and records every byte that
// passes, both ways. Bytes are recorded before they are forwarded, so the
// record keeps the causal order: the server's INFO is in it before the
// client can have answered it with CONNECT.
func tapProxy(t *testing.T, target string) (string, *syncbuf.Buffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l.Addr().String(), tapOn(t, l, target)
}

// tapOn is tapProxy on a listener of the caller's.
func tapOn(t *testing.T, l net.Listener, target string) *syncbuf.Buffer {
	t.Helper()
	tap := &syncbuf.Buffer{}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(io.MultiWriter(tap, s), c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(io.MultiWriter(tap, c), s); done <- struct{}{} }()
				<-done
			})
		}
	})
	return tap
}

// TestTLSTrafficIsNotPlain runs a scrape on one joined worker whose every
// byte to the queue passes a tap: by default the tap sees the server's INFO
// demand TLS and then nothing of the run (no URL, no subject, no login, no
// record); with --no-tls, the same tap reads all of them, which shows it
// would. Either way no credential crosses: the join key's seed signs the
// server's nonce and never leaves the worker.
func TestTLSTrafficIsNotPlain(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "no-tls", true: "default"}[useTLS]
		t.Run(name, func(t *testing.T) {
			addr := testsite.ClosedPort(t)
			state := filepath.Join(t.TempDir(), "state")
			extra := []string{"--listen", addr, "--state", state, "--wait-workers", "1m"}
			if !useTLS {
				extra = append(extra, "--no-tls")
			}
			cmd, out, want, stderr := slowRun(t, 20, 10*time.Millisecond, "# joined workers only\n", extra...)
			key := filepath.Join(state, coordinator.JoinKeyFile)
			waitForFile(t, key)
			proxy, tap := tapProxy(t, addr)
			var w *process
			if useTLS {
				// The proxy's address is not one the certificate names, so
				// the worker dials it as localhost, which it does.
				_, port, _ := net.SplitHostPort(proxy)
				w = joinWorker(t, "localhost:"+port, state, "tapped", 4)
			} else {
				w = start(t, "worker", "--nats", "nats://"+proxy, "--nkey", key, "--slots", "4", "--name", "tapped")
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("run: %v\n%s\nworker:\n%s", err, stderr.String(), w.stderr.String())
			}
			byLine(t, readJSON(t, out), want)
			w.wait(t, 10*time.Second)

			seen := tap.String()
			if !strings.HasPrefix(seen, "INFO {") {
				t.Fatalf("the tap saw no NATS INFO: %.200q", seen)
			}
			if got := strings.Contains(seen, `"tls_required":true`); got != useTLS {
				t.Errorf("INFO tls_required %v, want %v: %.400q", got, useTLS, seen)
			}
			for _, s := range []string{"/slow/10/", "CONNECT {", ".task", "Scrape-Results", "tapped"} {
				if strings.Contains(seen, s) == useTLS {
					t.Errorf("with tls=%v, the tap %s %q in %d bytes", useTLS, map[bool]string{true: "read", false: "did not read"}[useTLS], s, len(seen))
				}
			}
			// A record's description: results travel compressed
			// (queue.Compress), so even --no-tls shows it only in part.
			if useTLS && strings.Contains(seen, testsite.Description(7)) {
				t.Errorf("the tap read a record's description")
			}
			seed, err := os.ReadFile(key)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{strings.TrimSpace(string(seed)), `"pass"`, `"auth_token"`} {
				if strings.Contains(seen, secret) {
					t.Errorf("with tls=%v, the tap read %.12q...", useTLS, secret)
				}
			}
		})
	}
}
