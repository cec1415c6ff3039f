package testcluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	// MarkerDir holds one marker file per live cluster, named after the /24
	// it reserves (net-10.213.7.0.json) and recording the cluster id and the
	// process that created it.
	MarkerDir = "/run/scrape-testcluster"
	// SweepTimeout bounds Sweep as a whole.
	SweepTimeout = 60 * time.Second
)

// marker records who owns a cluster. It is written before anything is
// created, so a bridge or namespace of ours without a marker is a leftover.
// Its owner holds an flock on it for the cluster's life: a PID alone cannot
// tell a live owner, since test processes may run in PID namespaces of their
// own, where the same number names another process.
type marker struct {
	ID     string `json:"id"`
	PID    int    `json:"pid"`
	Start  uint64 `json:"start"` // the owner's start time, to tell a reused PID
	Subnet string `json:"subnet"`
}

// reserve picks the cluster's id and a free /24 and writes its marker. The
// marker file is created with link(2), which fails if it exists: that makes
// the /24 the cluster's even against other test processes.
func (c *Cluster) reserve(ctx context.Context) error {
	rng, err := addrRange()
	if err != nil {
		return err
	}
	if err := checkRange(ctx, rng); err != nil {
		return err
	}
	if err := os.MkdirAll(MarkerDir, 0o755); err != nil {
		return err
	}
	start, ok := procStart(os.Getpid())
	if !ok {
		return fmt.Errorf("read own start time from /proc")
	}
	c.ID = newID()
	c.Bridge = bridgeName(c.ID)
	m := marker{ID: c.ID, PID: os.Getpid(), Start: start}
	n := min(1<<(24-rng.Bits()), 256)
	first := rand.IntN(n)
	base := binary.BigEndian.Uint32(rng.Addr().AsSlice())
	for k := range n {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+uint32((first+k)%n)<<8)
		subnet := netip.PrefixFrom(netip.AddrFrom4(a), 24)
		m.Subnet = subnet.String()
		path := filepath.Join(MarkerDir, "net-"+subnet.Addr().String()+".json")
		lock, err := writeMarker(path, m)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		c.marker, c.Subnet, c.lock = path, subnet, lock
		c.BridgeAddr = c.hostAddr(0).String()
		return nil
	}
	return fmt.Errorf("no free /24 left in %s: %d clusters running?", rng, n)
}

// writeMarker creates path with m as its content, failing if it exists, and
// returns it open and locked. The lock is taken before the marker gets its
// name, so no Sweep ever sees it unlocked while its owner lives.
func writeMarker(path string, m marker) (*os.File, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(MarkerDir, fmt.Sprintf(".tmp-%d-%s", os.Getpid(), m.ID))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock marker: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// locked reports whether a live process holds path's lock. If none does,
// the lock is returned held, so that no other Sweep works on it meanwhile.
func locked(path string) (held bool, release func()) {
	f, err := os.Open(path)
	if err != nil {
		return false, func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return errors.Is(err, syscall.EWOULDBLOCK), func() {}
	}
	return false, func() { f.Close() }
}

func readMarker(path string) (marker, error) {
	var m marker
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil || m.ID == "" {
		return m, fmt.Errorf("marker %s: unreadable: %q", path, data)
	}
	return m, nil
}

// Sweep removes what earlier test processes left behind: the namespaces,
// links and processes of every cluster whose creating process is gone, and
// those of ours that have no marker at all. Live clusters are not touched.
// New calls it; a CI job may call it too.
func Sweep() error {
	ctx, cancel := context.WithTimeout(context.Background(), SweepTimeout)
	defer cancel()
	// Resources first, markers second: a resource seen here was created
	// after its cluster's marker, so that marker is seen below unless the
	// cluster was closed in between.
	ids := map[string]bool{}
	for _, name := range slices.Concat(ourLinks(), ourNetns(), ourEtc()) {
		ids[idOf(name)] = true
	}
	entries, err := os.ReadDir(MarkerDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(MarkerDir, e.Name())
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if held, release := locked(path); !held {
				_ = os.Remove(path)
				release()
			}
			continue
		}
		m, err := readMarker(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		delete(ids, m.ID)
		held, release := locked(path)
		if held {
			continue
		}
		if err := destroy(ctx, m.ID, path); err != nil {
			errs = append(errs, fmt.Errorf("sweep cluster %s of dead pid %d: %w", m.ID, m.PID, err))
		}
		release()
	}
	for id := range ids {
		if err := destroy(ctx, id, ""); err != nil {
			errs = append(errs, fmt.Errorf("sweep cluster %s without marker: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// destroy kills every process in cluster id's namespaces, deletes its links
// and namespaces, then its marker (if markerPath is not empty). Things that
// vanish meanwhile (another Sweep) are not errors.
func destroy(ctx context.Context, id, markerPath string) error {
	if id == "" {
		return nil
	}
	var errs []error
	var netns []string
	for _, name := range ourNetns() {
		if idOf(name) != id {
			continue
		}
		// A namespace outlives its name while a process is in it, and keeps
		// its end of the veth with it: kill first, delete after. If some
		// process survives, keep the name so that a later Sweep finds it.
		ino, err := nsInode(netnsPath(name))
		if err != nil {
			continue // deleted meanwhile
		}
		if err := killNetns(ctx, ino); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		netns = append(netns, name)
	}
	for _, link := range ourLinks() {
		if idOf(link) != id {
			continue
		}
		if err := ipCmd(ctx, "link", "del", link); err != nil && linkExists(link) {
			errs = append(errs, err)
		}
	}
	for _, name := range netns {
		if err := ipCmd(ctx, "netns", "del", name); err != nil && exists(netnsPath(name)) {
			errs = append(errs, err)
		}
	}
	for _, name := range ourEtc() {
		if idOf(name) != id {
			continue
		}
		if err := os.RemoveAll(filepath.Join(etcDir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && markerPath != "" {
		if err := os.Remove(markerPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}
