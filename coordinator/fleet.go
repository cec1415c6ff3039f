package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/worker"
)

// fleet is the run's workers: launched in parallel, each reported as it comes
// up or fails, and watched until the run ends.
type fleet struct {
	c     *Coordinator
	nodes []*node
	sub   *nats.Subscription

	events   chan fleetEvent
	launches sync.WaitGroup
	stopOnce sync.Once

	mu    sync.Mutex
	ready int
}

// fleetEvent is a launch that ended (ready, or err) or a ready worker that
// went away (lost).
type fleetEvent struct {
	n     *node
	err   error
	ready bool
	lost  bool
}

// launch starts a worker on every host, in the background, and returns at
// once. Launches end when they succeed, fail or ctx is cancelled.
func (c *Coordinator) launch(ctx context.Context, nc *nats.Conn, q *queue) (*fleet, error) {
	fl := &fleet{c: c, events: make(chan fleetEvent, 2*len(c.cfg.Hosts))}
	hello := make(map[string]chan worker.Hello, len(c.cfg.Hosts))
	seen := map[string]int{}
	for _, h := range c.cfg.Hosts {
		name := h.Name
		if seen[name]++; seen[name] > 1 {
			name += "#" + strconv.Itoa(seen[name])
		}
		fl.nodes = append(fl.nodes, &node{host: h, name: name, local: isLocal(h)})
		hello[name] = make(chan worker.Hello, 1)
	}
	var err error
	fl.sub, err = nc.Subscribe(c.run.HelloSubject(), func(m *nats.Msg) {
		var h worker.Hello
		if json.Unmarshal(m.Data, &h) != nil {
			return
		}
		if ch, ok := hello[h.Node]; ok {
			select {
			case ch <- h:
			default:
			}
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe to workers: %w", err)
	}
	for _, n := range fl.nodes {
		fl.launches.Go(func() {
			err := c.start(ctx, n, q, hello[n.name])
			fl.events <- fleetEvent{n: n, err: err, ready: err == nil}
			if err != nil {
				return
			}
			fl.mu.Lock()
			fl.ready++
			fl.mu.Unlock()
			go func() {
				<-n.exited
				fl.events <- fleetEvent{n: n, lost: true}
			}()
		})
	}
	return fl, nil
}

// start launches n's worker and waits for its hello.
func (c *Coordinator) start(ctx context.Context, n *node, q *queue, ready <-chan worker.Hello) error {
	servers, auth := c.cfg.NATS, c.cfg.NATSAuth
	if q.srv != nil {
		addr, err := c.advertise(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		servers, auth = q.forWorker(addr, auth)
	}
	var err error
	boot := worker.Bootstrap{
		Version:  worker.ProtocolVersion,
		Servers:  servers,
		Auth:     auth,
		Run:      c.run.ID,
		Node:     n.name,
		Slots:    n.host.Slots,
		LogLevel: c.cfg.LogLevel,
	}
	n.remoteBin = c.cfg.RemoteBin
	if c.cfg.Push && !n.local {
		if n.remoteBin, err = c.push(ctx, n); err != nil {
			return err
		}
	}
	if err := n.start(ctx, &c.cfg, boot, c.relay); err != nil {
		return err
	}
	h, err := n.awaitReady(ctx, ready, c.cfg.ConnectTimeout+readyTimeout)
	if err != nil {
		return err
	}
	c.log.Info("worker ready", "node", n.name, "worker", h.Worker, "slots", h.Slots, "os", h.OS, "arch", h.Arch, "dial", boot.Servers[0])
	return nil
}

// watch reports launches that fail and nodes lost mid-run. It fails the run
// when no worker is left and none is still starting.
func (fl *fleet) watch(ctx context.Context, f *frontier) error {
	stderr := fl.c.stderr
	starting, alive := len(fl.nodes), 0
	var failed []string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.done:
			return nil
		case ev := <-fl.events:
			switch {
			case ev.ready:
				starting--
				alive++
			case ev.lost:
				alive--
				msg := fmt.Sprintf("lost node %s: %s", ev.n.name, ev.n.exitReason())
				if alive > 0 {
					msg += fmt.Sprintf("; its tasks go to the other %d node(s)", alive)
				}
				fmt.Fprintf(stderr, "scrape: warning: %s\n", msg)
			default:
				starting--
				if ctx.Err() != nil {
					return nil
				}
				failed = append(failed, ev.err.Error())
				fmt.Fprintf(stderr, "scrape: warning: %v\n", ev.err)
			}
			if alive > 0 || starting > 0 {
				continue
			}
			if len(failed) == len(fl.nodes) {
				return fmt.Errorf("%w could start on any node:\n  %s", ErrNoWorkers, strings.Join(failed, "\n  "))
			}
			return fmt.Errorf("%w left: every node was lost with %d URLs outstanding", ErrNoWorkers, f.outstanding())
		}
	}
}

func (fl *fleet) readyCount() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.ready
}

// stop ends every launch and stops every worker the run started, in
// parallel. Only the first call does anything; the caller cancels the
// launches' context first.
func (fl *fleet) stop(nc *nats.Conn) {
	fl.stopOnce.Do(func() {
		fl.launches.Wait()
		_ = fl.sub.Unsubscribe()
		if nc.IsConnected() {
			_ = nc.Publish(fl.c.run.ControlSubject(), []byte(worker.ControlStop))
			_ = nc.FlushTimeout(time.Second)
		}
		var wg sync.WaitGroup
		for _, n := range fl.nodes {
			wg.Go(func() { n.stop(stopGrace) })
		}
		wg.Wait()
	})
}
