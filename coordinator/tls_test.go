package coordinator

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/queue"
)

// startTLSQueue starts a run's embedded queue with --tls on loopback.
func startTLSQueue(t *testing.T) (*embeddedServer, string) {
	t.Helper()
	dir := t.TempDir()
	srv, err := startServer(queue.Run{ID: "TLSTEST"}, "127.0.0.1:0", dir, true, certNames(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.shutdown)
	return srv, dir
}

// connect logs in to url as a worker with the ID id would.
func connect(t *testing.T, url string, auth queue.Auth, id string) (*nats.Conn, error) {
	t.Helper()
	opts, err := auth.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, nats.Name(queue.ClientName(id, "test")), nats.CustomInboxPrefix(queue.InboxPrefix(id)),
		nats.Timeout(5*time.Second), nats.NoReconnect())
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// TestTLSQueueTrustsOnlyItsPin: the credentials a run hands its workers work
// over TLS; the same credentials with another pin do not, and neither do
// they without TLS. A worker joining by hand trusts the run's certificate
// file as its CA and logs in with the join key.
func TestTLSQueueTrustsOnlyItsPin(t *testing.T) {
	srv, dir := startTLSQueue(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(srv.port())
	id := queue.NewWorkerID()
	auth, err := srv.workerAuth(id)
	if err != nil {
		t.Fatal(err)
	}
	if auth.Pin == "" {
		t.Fatal("a --tls queue gives its workers no pin")
	}

	nc, err := connect(t, url, auth, id)
	if err != nil {
		t.Fatalf("worker with the run's pin: %v", err)
	}
	if cs, err := nc.TLSConnectionState(); err != nil || queue.CertPin(cs.PeerCertificates[0].Raw) != auth.Pin {
		t.Errorf("connection is not TLS with the pinned certificate: %v", err)
	}

	wrong := auth
	wrong.Pin = queue.CertPin([]byte("another certificate"))
	if _, err := connect(t, url, wrong, id); err == nil || !strings.Contains(err.Error(), "does not match this run's pin") {
		t.Errorf("worker with a wrong pin: %v, want a pin mismatch", err)
	}

	// Without the pin, nats.go follows the server's INFO into TLS and
	// then cannot trust a certificate nothing signed; the bare-TCP client
	// in TestTLSQueueOnTheWire shows the server refusing plaintext.
	plain := auth
	plain.Pin = ""
	if _, err := connect(t, url, plain, id); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("client without the pin: %v, want a TLS failure", err)
	}

	ca, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, JoinKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	joiner := queue.Auth{CA: string(ca), NKeySeed: strings.TrimSpace(string(seed))}
	for _, u := range []string{url, "tls://localhost:" + strconv.Itoa(srv.port())} {
		if _, err := connect(t, u, joiner, queue.NewWorkerID()); err != nil {
			t.Errorf("joiner with the run's certificate as CA, at %s: %v", u, err)
		}
	}
	kp, _ := nkeys.CreateUser()
	other, _ := kp.Seed()
	joiner.NKeySeed = string(other)
	if _, err := connect(t, url, joiner, queue.NewWorkerID()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("joiner with another key: %v, want %v", err, nats.ErrAuthorization)
	}
}

// TestTLSQueueOnTheWire dials the port as a bare TCP client: the server's
// INFO demands TLS, a plaintext CONNECT with the right password gets no
// answer but a closed connection, and a TLS handshake shows the run's
// certificate.
func TestTLSQueueOnTheWire(t *testing.T) {
	srv, _ := startTLSQueue(t)
	addr := "127.0.0.1:" + strconv.Itoa(srv.port())
	info := func(conn net.Conn) *bufio.Reader {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(conn)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			TLSRequired bool `json:"tls_required"`
		}
		js, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
		if !ok || json.Unmarshal([]byte(js), &v) != nil || !v.TLSRequired {
			t.Fatalf("server's INFO does not require TLS: %q", line)
		}
		return r
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := info(conn)
	connect, _ := json.Marshal(map[string]any{"name": queue.ClientName(queue.NewWorkerID(), "plain"), "verbose": false, "pedantic": false})
	if _, err := conn.Write([]byte("CONNECT " + string(connect) + "\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if bytes.Contains(rest, []byte("PONG")) {
		t.Errorf("plaintext CONNECT was answered: %q", rest)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("server neither answered nor closed a plaintext CONNECT: %q", rest)
	}

	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	info(conn2)
	tc := tls.Client(conn2, &tls.Config{InsecureSkipVerify: true}) // checked by pin below
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake after INFO: %v", err)
	}
	if got := queue.CertPin(tc.ConnectionState().PeerCertificates[0].Raw); got != srv.pin {
		t.Errorf("handshake shows certificate %s, want the run's %s", got, srv.pin)
	}
}
