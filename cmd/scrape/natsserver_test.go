package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// The helpers here start real nats-server instances in the test process, as
// the NATS server or cluster a user points scrape run --nats at.

// startNATS starts one server on a random loopback port with JetStream in
// its own temporary store; set adjusts the options first (auth, TLS, no
// JetStream). It returns the server and its client URL.
func startNATS(t *testing.T, set func(*server.Options)) (*server.Server, string) {
	t.Helper()
	opts := &server.Options{
		ServerName: "test-nats",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT, // 0 would mean 4222
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20, // what the embedded queue allows, for big results
		JetStream:  true,
		StoreDir:   t.TempDir(),
	}
	if set != nil {
		set(opts)
	}
	srv := runNATS(t, opts)
	scheme := "nats"
	if opts.TLSConfig != nil {
		scheme = "tls"
	}
	return srv, fmt.Sprintf("%s://%s", scheme, srv.Addr())
}

func runNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	return runNATSLogged(t, opts, nil)
}

// runNATSLogged is runNATS with the server's log going to log.
func runNATSLogged(t *testing.T, opts *server.Options, log server.Logger) *server.Server {
	t.Helper()
	srv := spawnNATSLogged(t, opts, log)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server %s not ready after 10s", opts.ServerName)
	}
	return srv
}

// spawnNATS starts a server for the length of the test without waiting for
// it: a cluster's members only become ready together.
func spawnNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	return spawnNATSLogged(t, opts, nil)
}

func spawnNATSLogged(t *testing.T, opts *server.Options, log server.Logger) *server.Server {
	t.Helper()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server %s: %v", opts.ServerName, err)
	}
	if log != nil {
		srv.SetLoggerV2(log, false, false, false)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// natsCluster is a JetStream cluster of real servers on loopback.
type natsCluster struct {
	servers []*server.Server
	urls    []string // client URLs, in the order of servers
}

// startNATSCluster starts n clustered JetStream servers, each with its own
// store, and waits until they have elected a meta leader. set adjusts each
// server's options (auth). JetStream clustering wants configured routes, so
// the cluster ports are found first and every server routes to the others.
func startNATSCluster(t *testing.T, n int, set func(*server.Options)) *natsCluster {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	c := &natsCluster{}
	for i := range n {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 8 << 20,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "scrape-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		if set != nil {
			set(opts)
		}
		c.servers = append(c.servers, spawnNATS(t, opts))
	}
	for _, srv := range c.servers {
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server %s not ready after 10s", srv.Name())
		}
		c.urls = append(c.urls, "nats://"+srv.Addr().String())
	}
	waitFor(t, 30*time.Second, "a JetStream meta leader with every peer current", func() bool {
		peers := 0 // the meta leader alone reports them
		for _, srv := range c.servers {
			if !srv.JetStreamIsCurrent() {
				return false
			}
			if srv.JetStreamIsLeader() {
				peers = len(srv.JetStreamClusterPeers())
			}
		}
		return peers == n
	})
	return c
}

// probe waits until the cluster can place a stream with n replicas: even
// with a meta leader elected, the first one can take longer than a client's
// 5 s API timeout.
func (c *natsCluster) probe(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: len(c.servers)}
	for {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster cannot place an R%d stream: %v", cfg.Replicas, err)
		}
		t.Logf("probe stream: %v", err)
	}
	if err := js.DeleteStream(ctx, cfg.Name); err != nil {
		t.Fatalf("delete probe stream: %v", err)
	}
}

// byName is the running server called name, or nil.
func (c *natsCluster) byName(name string) *server.Server {
	for _, srv := range c.servers {
		if srv.Name() == name && srv.Running() {
			return srv
		}
	}
	return nil
}

// jsClient connects the test itself to servers, for looking at what a run
// left behind.
func jsClient(t *testing.T, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))...)
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// runStreams lists the streams and key-value buckets scrape runs made on js.
func runStreams(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var names []string
	l := js.StreamNames(ctx) // key-value buckets are streams named KV_<bucket>
	for name := range l.Name() {
		if strings.HasPrefix(name, "SCRAPE_") || strings.HasPrefix(name, "KV_SCRAPE_") {
			names = append(names, name)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatalf("list streams: %v", err)
	}
	return names
}

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1.
type testCA struct {
	pem    []byte // the CA's certificate
	server tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "scrape test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
}

// serveTLS makes the server require TLS with the CA's certificate.
func (ca testCA) serveTLS(o *server.Options) {
	o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}
	o.TLS = true
	o.TLSTimeout = 5
}

// operator is a NATS operator with one JetStream-enabled account, for a
// server in JWT mode; its users log in with .creds files.
type operator struct {
	claims   *jwt.OperatorClaims
	resolver *server.MemAccResolver
	system   string
	account  nkeys.KeyPair
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	account := func(jetStream bool) (nkeys.KeyPair, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(pub)
		if jetStream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		enc, err := ac.Encode(okp)
		must(err)
		return kp, enc
	}
	sysKP, sysJWT := account(false)
	sysPub, err := sysKP.PublicKey()
	must(err)
	accKP, accJWT := account(true)
	accPub, err := accKP.PublicKey()
	must(err)

	oc := jwt.NewOperatorClaims(opub)
	oc.SystemAccount = sysPub
	encOp, err := oc.Encode(okp)
	must(err)
	claims, err := jwt.DecodeOperatorClaims(encOp)
	must(err)
	res := &server.MemAccResolver{}
	must(res.Store(sysPub, sysJWT))
	must(res.Store(accPub, accJWT))
	return &operator{claims: claims, resolver: res, system: sysPub, account: accKP}
}

func (op *operator) trust(o *server.Options) {
	o.TrustedOperators = []*jwt.OperatorClaims{op.claims}
	o.AccountResolver = op.resolver
	o.SystemAccount = op.system
}

// creds makes a user of the operator's account with the rights perm (all,
// when nil) and returns its .creds file content. signer, when not nil, signs
// the user instead of the account, as a stranger to this server would.
func (op *operator) creds(t *testing.T, signer nkeys.KeyPair, perm *server.Permissions) string {
	t.Helper()
	if signer == nil {
		signer = op.account
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	uc := jwt.NewUserClaims(upub)
	if perm != nil {
		uc.Permissions.Pub.Allow = jwt.StringList(perm.Publish.Allow)
		uc.Permissions.Sub.Allow = jwt.StringList(perm.Subscribe.Allow)
	}
	enc, err := uc.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(enc, useed)
	if err != nil {
		t.Fatal(err)
	}
	return string(creds)
}

// nkeyUser makes an NKey user and returns its public key and seed.
func nkeyUser(t *testing.T) (string, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	return pub, string(seed)
}
