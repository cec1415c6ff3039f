package coordinator

import (
	"encoding/base64"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/queue"
)

// access decides who may log in to the embedded queue, and what each may do
// there. Every login is an NKey's signature of the server's nonce, so no
// secret crosses the network, not even without TLS. The coordinator has a
// key of its own and may do anything; each worker the run starts has its
// own key, bound to the worker ID the run gave it; workers that join by hand
// share the run's join key and pick their own IDs. A worker of either kind
// gets queue.WorkerPermissions for its ID and nothing else.
type access struct {
	run         queue.Run
	coordinator string // public keys
	join        string

	mu      sync.Mutex
	workers map[string]string // a started worker's public key → its ID
	ids     map[string]bool   // the IDs of started workers, which joiners cannot take
}

func newAccess(run queue.Run, coordinator, join string) *access {
	return &access{run: run, coordinator: coordinator, join: join, workers: map[string]string{}, ids: map[string]bool{}}
}

// allow lets the holder of the NKey pub log in as the worker id.
func (a *access) allow(pub, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workers[pub] = id
	a.ids[id] = true
}

// Check implements server.Authentication.
func (a *access) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o.Nkey == "" || !signed(o.Nkey, o.Sig, c.GetNonce()) {
		return false
	}
	if o.Nkey == a.coordinator {
		c.RegisterUser(&server.User{Username: "coordinator"})
		return true
	}
	id, ok := queue.WorkerIDFromName(o.Name)
	if !ok {
		return false
	}
	a.mu.Lock()
	started, isStarted := a.workers[o.Nkey]
	taken := a.ids[id]
	a.mu.Unlock()
	switch {
	case isStarted && started == id:
	case o.Nkey == a.join && !taken:
	default:
		return false
	}
	p := queue.WorkerPermissions(a.run, id)
	c.RegisterUser(&server.User{
		Username: "worker " + id,
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: p.Publish},
			Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
		},
	})
	return true
}

// signed reports whether sig is the NKey pub's signature of nonce.
func signed(pub, sig string, nonce []byte) bool {
	if len(nonce) == 0 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return false
	}
	return kp.Verify(nonce, raw) == nil
}

// newKey makes an NKey user key: its seed for the holder, its public key for
// access.
func newKey() (seed, pub string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", "", err
	}
	s, err := kp.Seed()
	if err != nil {
		return "", "", err
	}
	p, err := kp.PublicKey()
	return string(s), p, err
}
