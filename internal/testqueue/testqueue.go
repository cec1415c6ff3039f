// Package testqueue starts real JetStream servers for tests and benchmarks:
// the queue's tests, the worker's and the coordinator's in-process tests all
// run against the same kind of server the product embeds.
package testqueue

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// User and Password log in to a server that Start started.
const (
	User     = "w"
	Password = "secret"
)

// Start starts a JetStream server on a free loopback port, storing in a
// temporary directory, with the one user User, for the length of the test or
// benchmark.
func Start(tb testing.TB) *server.Server {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: tb.TempDir(),
		Users: []*server.User{{Username: User, Password: Password}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}
