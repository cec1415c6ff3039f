package queue

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Auth is how a client proves itself to NATS and checks the server. It holds
// secrets themselves rather than file names: the coordinator hands its own to
// the workers it starts inside their bootstrap, so a node needs no copy of any
// file and nothing secret reaches a command line.
type Auth struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	// Creds is the content of a NATS .creds file: a user JWT and its seed.
	Creds string `json:"creds,omitempty"`
	// NKeySeed is an NKey user's seed ("SU...").
	NKeySeed string `json:"nkey_seed,omitempty"`
	// CA is PEM of the certificates that sign the server's, for a server
	// with a certificate of its own.
	CA string `json:"ca,omitempty"`
	// Pin is the hex SHA-256 of the server's certificate (DER). A run's
	// embedded queue serves a certificate made for that run; nothing signs
	// it, so workers trust exactly that one.
	Pin string `json:"tls_pin,omitempty"`
}

// AuthFiles names the files a user points scrape at, as NATS tools do.
type AuthFiles struct {
	Creds        string
	NKey         string
	User         string
	PasswordFile string
	TokenFile    string
	CA           string
}

// Load reads the files into an Auth. Secrets come from files only: a
// password given as a flag would be on the command line for ps to show.
func (f AuthFiles) Load() (Auth, error) {
	a := Auth{User: f.User}
	read := func(what, path string, dst *string) error {
		if path == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		*dst = strings.TrimSpace(string(data))
		return nil
	}
	err := errors.Join(
		read("creds file", f.Creds, &a.Creds),
		read("nkey seed file", f.NKey, &a.NKeySeed),
		read("password file", f.PasswordFile, &a.Password),
		read("token file", f.TokenFile, &a.Token),
		read("CA file", f.CA, &a.CA),
	)
	if err != nil {
		return a, err
	}
	if a.Password != "" && a.User == "" {
		return a, errors.New("a password needs a user name")
	}
	return a, nil
}

// Options turns a into nats.Connect options.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.User != "" {
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.Token != "" {
		opts = append(opts, nats.Token(a.Token))
	}
	if a.Creds != "" {
		jwt, err := nkeys.ParseDecoratedJWT([]byte(a.Creds))
		if err != nil {
			return nil, fmt.Errorf("read creds: %w", err)
		}
		kp, err := nkeys.ParseDecoratedNKey([]byte(a.Creds))
		if err != nil {
			return nil, fmt.Errorf("read creds: %w", err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("read creds: %w", err)
		}
		opts = append(opts, nats.UserJWTAndSeed(jwt, string(seed)))
	}
	if a.NKeySeed != "" {
		kp, err := nkeys.FromSeed([]byte(a.NKeySeed))
		if err != nil {
			return nil, fmt.Errorf("read nkey seed: %w", err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("read nkey seed: %w", err)
		}
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	}
	if a.CA != "" || a.Pin != "" {
		tc, err := a.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

func (a Auth) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(a.CA)) {
			return nil, errors.New("CA file holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if a.Pin != "" {
		want, err := hex.DecodeString(a.Pin)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("invalid certificate pin %q", a.Pin)
		}
		// The name and chain checks are replaced by the pin, not dropped:
		// VerifyConnection runs on every handshake and accepts one
		// certificate only. Workers dial the coordinator by whatever
		// address routes to it, which no certificate name could foresee.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("queue server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], want) {
				return fmt.Errorf("queue server certificate %x does not match this run's pin", got[:8])
			}
			return nil
		}
	}
	return tc, nil
}

// CertPin is the pin of a DER certificate, as Auth.Pin holds it.
func CertPin(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
