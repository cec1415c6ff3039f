package coordinator

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/queue"
)

// node is one machinefile host and the worker the run started there.
type node struct {
	Node
	launchedAt time.Time // when its launch began

	proc Process // set once started

	worker  string        // the worker's ID, which the run gives it
	gone    chan struct{} // closed when the worker says bye
	byeOnce sync.Once
	stopBy  time.Time // set by stop: when reap kills what is left
	// renderSlots is what its hello said: pages it renders at a time, 0
	// if it cannot (--render). Set before its ready event is sent.
	renderSlots int
}

// start launches n's worker, hands it the bootstrap once the queue is ready,
// and waits for its hello.
func (fl *fleet) start(ctx context.Context, n *node) error {
	c := fl.c
	var addr string
	var addrErr error
	if len(c.cfg.NATS) == 0 {
		addr, addrErr = c.advertise(ctx, n.Node)
	}
	proc, err := c.launcher.Start(ctx, n.Node)
	if err != nil {
		return err
	}
	n.proc = proc
	if addrErr != nil {
		// No route to a name is most often a name ssh cannot reach either,
		// and ssh's own word on it is the one the user knows: wait for it.
		t := time.NewTimer(c.cfg.ConnectTimeout + time.Second)
		defer t.Stop()
		select {
		case <-proc.Exited():
			return fmt.Errorf("%s: %s", n.Name, proc.Reason())
		case <-t.C:
		case <-ctx.Done():
		}
		proc.Kill()
		<-proc.Exited()
		return fmt.Errorf("%s: %w", n.Name, addrErr)
	}
	select {
	case <-fl.queued:
	case <-ctx.Done():
		// The run never got going: no worker is owed a goodbye.
		proc.Kill()
		<-n.proc.Exited()
		return ctx.Err()
	}
	servers, auth := c.cfg.NATS, c.cfg.WorkerAuth
	if q := fl.queue; q.srv != nil {
		if servers, auth, err = q.forWorker(addr, n.worker); err != nil {
			proc.Kill()
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	boot := queue.Bootstrap{
		Version:  queue.ProtocolVersion,
		Servers:  servers,
		Auth:     auth,
		Run:      c.run.ID,
		Node:     n.Name,
		Worker:   n.worker,
		Slots:    c.cfg.fetches(n.Host),
		LogLevel: c.cfg.LogLevel,
		Job:      fl.job,
		Proxies:  n.Host.Proxies,
		Render:   n.Host.Render,
	}
	if err := proc.Hand(boot); err != nil {
		return err
	}
	h, err := n.awaitReady(ctx, fl.hello[n.worker], c.cfg.ConnectTimeout+readyTimeout)
	if err != nil {
		return err
	}
	n.renderSlots = h.RenderSlots
	c.log.Info("worker ready", "node", n.Name, "worker", n.worker, "slots", n.Host.Slots, "fetches", h.Slots, "renders", h.RenderSlots, "os", h.OS, "arch", h.Arch, "dial", boot.Servers[0])
	return nil
}

// awaitReady waits for the worker's hello, or for it to die trying.
func (n *node) awaitReady(ctx context.Context, ready <-chan queue.Hello, timeout time.Duration) (queue.Hello, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case h := <-ready:
		return h, nil
	case <-n.proc.Exited():
		return queue.Hello{}, fmt.Errorf("%s: %s", n.Name, n.proc.Reason())
	case <-t.C:
		n.proc.Kill()
		return queue.Hello{}, fmt.Errorf("%s: worker not ready after %s (%s)", n.Name, timeout, n.proc.Reason())
	case <-ctx.Done():
		n.proc.Kill()
		return queue.Hello{}, ctx.Err()
	}
}

// stop signals the worker to hand back what it holds and exit, and waits
// until it has said bye, has exited, or grace has passed. A worker that said
// bye holds nothing and has left the queue; its process ending is reap's
// business, so the run can close its output and queue meanwhile.
func (n *node) stop(grace time.Duration) {
	if n.proc == nil {
		return
	}
	n.stopBy = time.Now().Add(grace)
	n.proc.Stop()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-n.proc.Exited():
	case <-n.gone:
	case <-t.C:
	}
}

// reap waits for the stopped worker to end, and kills it if it is still
// there when the grace stop gave it has passed.
func (n *node) reap() {
	if n.proc == nil {
		return
	}
	t := time.NewTimer(time.Until(n.stopBy))
	defer t.Stop()
	select {
	case <-n.proc.Exited():
		return
	case <-t.C:
	}
	n.proc.Kill()
	<-n.proc.Exited()
}

// bye records the worker's goodbye.
func (n *node) bye() { n.byeOnce.Do(func() { close(n.gone) }) }

// advertise picks the address n's worker dials to reach the queue.
func (c *Coordinator) advertise(ctx context.Context, n Node) (string, error) {
	return advertiseAddr(ctx, c.cfg.Listen, c.cfg.Advertise, c.cfg.SSH, n)
}

// WorkerAddress is the address the worker of the machinefile host h dials
// to reach a queue listening on listen (as --listen), given --advertise and
// the ssh command: what a run picks, for scrape check to try.
func WorkerAddress(ctx context.Context, listen, advertise string, ssh []string, h machinefile.Host) (string, error) {
	if len(ssh) == 0 {
		ssh = []string{"ssh"}
	}
	return advertiseAddr(ctx, listen, advertise, ssh, Node{Host: h, Name: h.Name, Local: isLocal(h)})
}

func advertiseAddr(ctx context.Context, listen, advertise string, ssh []string, n Node) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	host, _, _ := splitListen(listen)
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return host, nil // listening on one address: that is the one
	}
	if n.Local {
		return "127.0.0.1", nil
	}
	target := sshHostName(ctx, ssh, n.Host.Destination(), n.Host.Port)
	addr, err := routeAddr(ctx, target)
	if err != nil {
		return "", fmt.Errorf("find our address on the route to %s (set the address workers dial, --advertise): %w", target, err)
	}
	return addr, nil
}
