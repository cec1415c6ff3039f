package coordinator

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/queue"
)

// maxPayload is the largest message the embedded server accepts. A result
// with thousands of links can pass the NATS default of 1 MiB.
const maxPayload = 8 << 20

// embeddedServer is the run's own NATS server with JetStream, stored in the
// run's state directory.
type embeddedServer struct {
	srv    *server.Server
	access *access
	self   nkeys.KeyPair // the coordinator's login
	pin    string        // of the server's certificate; "" without TLS
	dir    string        // the run's state directory
	once   sync.Once
}

// JoinKeyFile is the file in a run's state directory holding the NKey seed
// that lets a worker started by hand (scrape worker --nats --nkey) join the
// run's embedded queue. It lives as long as the state directory, so such
// workers can rejoin a resumed run.
const JoinKeyFile = "worker.nk"

func startServer(run queue.Run, listen, runDir string, useTLS bool, names []string) (*embeddedServer, error) {
	host, port, err := splitListen(listen)
	if err != nil {
		return nil, err
	}
	self, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("make the coordinator's key: %w", err)
	}
	selfPub, err := self.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("make the coordinator's key: %w", err)
	}
	joiner, err := joinKey(runDir)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = server.RANDOM_PORT // to nats-server, 0 means its default 4222
	} else if err := portFree(host, port); err != nil {
		// nats-server does not report a port it cannot listen on; it is
		// just never ready.
		return nil, fmt.Errorf("start queue server: %w", err)
	}
	opts := &server.Options{
		ServerName: "scrape-coordinator",
		Host:       host,
		Port:       port,
		NoSigs:     true, // the coordinator owns signal handling
		NoLog:      true,
		MaxPayload: maxPayload,
		JetStream:  true,
		StoreDir:   filepath.Join(runDir, "jetstream"),
		// Every login signs the server's nonce with an NKey; access
		// checks the signature and sets what the client may do.
		AlwaysEnableNonce:          true,
		CustomClientAuthentication: newAccess(run, selfPub, joiner),
	}
	es := &embeddedServer{access: opts.CustomClientAuthentication.(*access), self: self, dir: runDir}
	if useTLS {
		cert, err := runCertificate(runDir, names)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		opts.TLS = true
		opts.TLSTimeout = 5 // seconds: a Raspberry Pi takes its time
		es.pin = queue.CertPin(cert.Certificate[0])
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start queue server: %w", err)
	}
	go srv.Start()
	// ReadyForConnections polls every 25 ms, which is most of a short run's
	// start-up; asking every millisecond is as cheap.
	for deadline := time.Now().Add(10 * time.Second); !srv.ReadyForConnections(time.Millisecond); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, fmt.Errorf("start queue server: not ready on %s after 10s", net.JoinHostPort(host, strconv.Itoa(port)))
		}
	}
	es.srv = srv
	return es, nil
}

// workerAuth makes the login of the worker with ID id, which the run starts:
// a key of its own, which the queue takes for that worker only, and the pin
// of the queue's certificate.
func (s *embeddedServer) workerAuth(id string) (queue.Auth, error) {
	seed, pub, err := newKey()
	if err != nil {
		return queue.Auth{}, fmt.Errorf("make worker key: %w", err)
	}
	s.access.allow(pub, id)
	return queue.Auth{NKeySeed: seed, Pin: s.pin}, nil
}

// login is the coordinator's own.
func (s *embeddedServer) login() nats.Option {
	pub, _ := s.self.PublicKey()
	return nats.Nkey(pub, s.self.Sign)
}

// joinKey returns the public key of the run's join NKey, making its seed
// file on first use.
func joinKey(runDir string) (string, error) {
	path := filepath.Join(runDir, JoinKeyFile)
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", fmt.Errorf("make join key: %w", err)
		}
		if seed, err = kp.Seed(); err != nil {
			return "", fmt.Errorf("make join key: %w", err)
		}
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			return "", fmt.Errorf("write join key: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("read join key: %w", err)
	} else if err := private(path); err != nil {
		return "", err
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return "", fmt.Errorf("read join key %s: %w", path, err)
	}
	return kp.PublicKey()
}

// port is the port the server actually listens on (listen may ask for 0).
func (s *embeddedServer) port() int {
	if a, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func (s *embeddedServer) shutdown() {
	s.once.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	})
}

// portFree checks that the queue can listen on host:port.
func portFree(host string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}

// splitListen reads --listen: "HOST:PORT", ":PORT" or "HOST". An empty host
// means every interface.
func splitListen(listen string) (string, int, error) {
	if listen == "" {
		return "0.0.0.0", 0, nil
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		// No port: the whole value is a host.
		host, portStr = listen, "0"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("listen address %q: invalid port", listen)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make run secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
