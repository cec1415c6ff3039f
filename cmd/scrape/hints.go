package main

import (
	"errors"
	"fmt"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/worker"
)

// hint adds to err the flags that would fix it. The packages below cmd say
// what went wrong in their own terms; which flag a person types is the
// command line's business.
func hint(err error) error {
	var state *coordinator.StateInUseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &state):
		return fmt.Errorf("%w: resume it with --resume %s, or start afresh with --force", err, state.Dir)
	case errors.Is(err, coordinator.ErrOutputExists):
		return fmt.Errorf("%w: choose another -o, or overwrite it with --force", err)
	case errors.Is(err, coordinator.ErrNoStatus):
		return fmt.Errorf("%w; give --state DIR", err)
	case errors.Is(err, queue.ErrNoBootstrap):
		return fmt.Errorf("%w (scrape worker is started by scrape run, or with --nats)", err)
	case errors.Is(err, worker.ErrRefused):
		return fmt.Errorf("%w: check --nkey, --creds, --nats-user, --nats-password-file or --nats-token-file (and --tls-ca), or for a worker started by scrape run --nats, the run's --worker-creds, --worker-nkey, --worker-user, --worker-password-file or --worker-token-file", err)
	case errors.Is(err, worker.ErrUntrusted):
		return fmt.Errorf("%w: for a run's own queue, give its certificate: --tls-ca <state dir>/queue-cert.pem", err)
	case errors.Is(err, worker.ErrSeveralRuns):
		return fmt.Errorf("%w: choose one with --run", err)
	}
	return err
}
