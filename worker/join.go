package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/queue"
)

// A worker started by hand (scrape worker --nats) gets no bootstrap: it finds
// its run on the NATS it is pointed at. A run is there while its config
// bucket is, and active while its coordinator answers a probe on the run's
// hello subject; a run whose coordinator is gone leaves no responder.

const (
	// probeTimeout bounds one probe of a run's coordinator.
	probeTimeout = 2 * time.Second
	// findEvery is how often a waiting worker looks again.
	findEvery = 2 * time.Second
)

// ErrNoActiveRun is returned when no run became active within Find.Wait.
var ErrNoActiveRun = errors.New("no active run")

// ErrSeveralRuns is returned when Find.Run is empty and several runs are
// active: a worker does not guess which to join.
var ErrSeveralRuns = errors.New("several runs are active")

// ErrUntrusted is a queue whose certificate this worker does not trust:
// waiting will not help either.
var ErrUntrusted = errors.New("the queue's certificate is not one we trust")

// untrusted reports whether err is a certificate the TLS handshake refused.
func untrusted(err error) bool {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	return errors.As(err, &unknown) || errors.As(err, &verify) || errors.As(err, &invalid) || errors.As(err, &host)
}

// ErrRefused is a login the queue turned down: waiting will not help.
var ErrRefused = errors.New("refused our credentials")

// Find is how a worker started by hand looks for its run.
type Find struct {
	Servers []string
	Auth    queue.Auth
	// Run is the run to join; empty means the one active run there is.
	Run string
	// Wait bounds the wait for a run (or for the queue to be reachable);
	// zero waits until the context ends.
	Wait   time.Duration
	Logger *slog.Logger
}

// FindRun returns the ID of the run to join: f.Run once its coordinator
// answers, or else the only active run. While there is none it waits, saying
// so; when several are active it fails and names them.
func FindRun(ctx context.Context, f Find) (string, error) {
	if len(f.Servers) == 0 {
		return "", errors.New("no NATS server given")
	}
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if f.Wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.Wait)
		defer cancel()
	}
	auth, err := f.Auth.Options()
	if err != nil {
		return "", err
	}
	url := strings.Join(f.Servers, ",")
	// The search has a worker ID of its own: the queue lets it use only the
	// subjects and the inbox of that ID, as it does any worker.
	self := queue.NewWorkerID()
	opts := append(auth, nats.Name(queue.ClientName(self, "(looking for a run)")), nats.CustomInboxPrefix(queue.InboxPrefix(self)),
		nats.Timeout(5*time.Second), nats.NoReconnect())

	var nc *nats.Conn
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	said := ""
	for {
		why := ""
		if nc == nil || !nc.IsConnected() {
			if nc != nil {
				nc.Close()
			}
			nc, err = nats.Connect(url, opts...)
			if errors.Is(err, nats.ErrAuthorization) {
				return "", refused(url, err)
			}
			if untrusted(err) {
				return "", fmt.Errorf("%s: %w (%w)", url, ErrUntrusted, err)
			}
			if err != nil {
				nc = nil
				why = fmt.Sprintf("queue %s not reachable: %v", url, err)
			}
		}
		if nc != nil {
			id, waiting, err := pickRun(ctx, nc, self, f.Run)
			if err != nil || id != "" {
				return id, err
			}
			why = waiting
		}
		if why != said {
			log.Info("waiting for a run to join", "why", why)
			said = why
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", fmt.Errorf("%w after %s: %s", ErrNoActiveRun, f.Wait, why)
			}
			return "", ctx.Err()
		case <-time.After(findEvery):
		}
	}
}

// pickRun looks once. It returns the run to join, or why there is none yet,
// or an error when waiting would not help.
func pickRun(ctx context.Context, nc *nats.Conn, self, want string) (id, why string, err error) {
	if want != "" {
		if probe(ctx, nc, queue.Run{ID: want}, self) {
			return want, "", nil
		}
		return "", fmt.Sprintf("run %s is not active", want), nil
	}
	active, err := ActiveRuns(ctx, nc, self)
	if err != nil {
		return "", fmt.Sprintf("cannot list runs: %v", err), nil
	}
	switch len(active) {
	case 0:
		return "", "no run is active", nil
	case 1:
		return active[0], "", nil
	}
	return "", "", fmt.Errorf("%w: %d (%s)", ErrSeveralRuns, len(active), strings.Join(active, ", "))
}

// ActiveRuns lists the IDs of the runs on nc whose coordinator answers a
// probe from the worker with ID self.
func ActiveRuns(ctx context.Context, nc *nats.Conn, self string) ([]string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := js.KeyValueStoreNames(lctx)
	var runs []queue.Run
	for b := range names.Name() {
		if r, ok := queue.RunFromBucket(b); ok {
			runs = append(runs, r)
		}
	}
	if err := names.Error(); err != nil {
		return nil, err
	}
	var active []string
	for _, r := range runs {
		if probe(ctx, nc, r, self) {
			active = append(active, r.ID)
		}
	}
	slices.Sort(active)
	return active, nil
}

// refused explains a login the queue turned down: waiting will not help.
func refused(url string, err error) error {
	return fmt.Errorf("%s %w (%w)", url, ErrRefused, err)
}

func probe(ctx context.Context, nc *nats.Conn, run queue.Run, self string) bool {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := nc.RequestWithContext(pctx, run.HelloSubject(self), nil)
	return err == nil
}
