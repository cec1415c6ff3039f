package check

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/remote"
)

// greeting starts the line a node sends on the way back; the token after
// it tells which node's attempt arrived, so that another program answering
// on the same address cannot pass for this check.
const greeting = "scrape-check "

// wayBack listens where the run's queue would, and notes which nodes
// connected.
type wayBack struct {
	l  net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	arrived map[string]string // token → the address it came from
	changed chan struct{}     // closed and replaced on every arrival
}

// listen listens on the run's --listen address: all interfaces by default,
// on its port, or a free one when it names none (as the run would).
func listen(addr string) (*wayBack, error) {
	host, port, err := coordinator.ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen where the run's queue would: %w", err)
	}
	b := &wayBack{l: l, arrived: map[string]string{}, changed: make(chan struct{})}
	b.wg.Go(b.serve)
	return b, nil
}

func (b *wayBack) Addr() net.Addr { return b.l.Addr() }
func (b *wayBack) Port() int      { return b.l.Addr().(*net.TCPAddr).Port }

// Close stops listening and waits for the connections being read.
func (b *wayBack) Close() error {
	err := b.l.Close()
	b.wg.Wait()
	return err
}

func (b *wayBack) serve() {
	for {
		conn, err := b.l.Accept()
		if err != nil {
			return // closed
		}
		b.wg.Go(func() { b.greet(conn) })
	}
}

// greet reads one greeting, answers it and hangs up.
func (b *wayBack) greet(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	token, isOurs := strings.CutPrefix(strings.TrimSpace(line), strings.TrimSpace(greeting))
	if err != nil || !isOurs {
		return
	}
	token = strings.TrimSpace(token)
	fmt.Fprintf(conn, "ok %s\n", conn.RemoteAddr())
	b.mu.Lock()
	b.arrived[token] = conn.RemoteAddr().String()
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// token is a new random token for one node's attempt.
func token() string {
	var t [12]byte
	_, _ = rand.Read(t[:])
	return hex.EncodeToString(t[:])
}

// wait waits up to d for token to arrive, and returns where from.
func (b *wayBack) wait(ctx context.Context, token string, d time.Duration) (string, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		b.mu.Lock()
		from, ok := b.arrived[token]
		changed := b.changed
		b.mu.Unlock()
		if ok {
			return from, true
		}
		select {
		case <-changed:
		case <-timer.C:
			return "", false
		case <-ctx.Done():
			return "", false
		}
	}
}

// blockedFix is the likely fix for a node that cannot connect back.
func blockedFix(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("let TCP port %s through this machine's firewall and the node's outgoing rules, "+
		"or set --listen and --advertise to an address and port the nodes can reach", port)
}

// dialHere tries the way back from this machine, for a local node.
func (b *wayBack) dialHere(ctx context.Context, addr string, addrErr error) Verdict {
	if addrErr != nil {
		return fail("give --advertise the address the nodes reach this machine at", "%v", addrErr)
	}
	tok := token()
	if _, err := dial(ctx, addr, tok); err != nil {
		return fail(blockedFix(addr), "%v", err)
	}
	return ok("connected to %s", addr)
}

// wayBack has the node connect to the listener, with scrape reach where a
// scrape of ours is on the node, else with bash's /dev/tcp.
func (c *nodeCheck) wayBack(ctx context.Context, t remote.Target) Verdict {
	addr, err := c.addr(ctx)
	if err != nil {
		return fail("give --advertise the address the nodes reach this machine at", "%v", err)
	}
	tok := token()
	var line string
	switch {
	case c.bin != "":
		line = c.info.Shell.Command(c.bin, "reach", "--tcp", addr, "--token", tok)
	case c.info.Shell == remote.POSIX && plainHost(addr):
		line = bashDial(addr, tok)
	default:
		return skip("not checked: there is no scrape on the node yet to connect back with")
	}
	_, runErr := t.Run(ctx, line, nil)
	if from, arrived := c.back.wait(ctx, tok, 2*time.Second); arrived {
		return ok("the node connected to %s (from %s)", addr, from)
	}
	var ce *remote.CommandError
	switch {
	case ctx.Err() != nil:
		return Verdict{Status: Skipped}
	case errors.As(runErr, &ce) && ce.Exit == noBash:
		return skip("not checked: no scrape on the node yet, and no bash to connect back with")
	case runErr != nil:
		return fail(blockedFix(addr), "the node cannot connect to %s: %v", addr, runErr)
	}
	return fail("something else answers at that address from the node (a NAT or another machine): set --advertise",
		"the node connected to %s, but not to this machine's listener", addr)
}

// noBash is the exit status of bashDial where the node has no bash.
const noBash = 3

// bashDial connects to addr with bash's /dev/tcp, for a node without our
// scrape yet (it arrives with --push when the run starts), within
// dialTimeout where coreutils' timeout is there.
func bashDial(addr, tok string) string {
	host, port, _ := net.SplitHostPort(addr)
	inner := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s && echo '%s%s' >&3 && read -t 5 ok <&3 && echo \"$ok\"", host, port, greeting, tok)
	return fmt.Sprintf(`command -v bash >/dev/null 2>&1 || exit %d; t=; if command -v timeout >/dev/null 2>&1; then t="timeout %d"; fi; $t bash -c %s`,
		noBash, int(dialTimeout.Seconds()), remote.ShQuote(inner))
}

// plainHost reports whether addr's host is safe to put in a /dev/tcp path.
func plainHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && strings.IndexFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':')
	}) < 0
}
