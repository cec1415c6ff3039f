// Package testqueue starts real JetStream servers for tests and benchmarks:
// the queue's tests, the worker's and the coordinator's in-process tests all
// run against the same kind of server the product embeds.
package testqueue

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// Connect logs in to srv as User, over loopback, for the length of the test
// or benchmark, and returns the connection's JetStream.
func Connect(tb testing.TB, srv *server.Server) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(User, Password))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
