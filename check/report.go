package check

import (
	"encoding/json"
	"fmt"
	"github.com/scrape-cluster/scrape/internal/bytesize"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scrape-cluster/scrape/remote"
)

// Status is how one check of a node came out.
type Status string

const (
	OK      Status = "ok"
	Warn    Status = "warn"    // the node can run, but something deserves a look
	Fail    Status = "fail"    // the node would not work in a run
	Skipped Status = "skipped" // not checked: an earlier check failed, or nothing to check with
)

// Verdict is one check of one node: what was found and, when it is not
// ok, the likely fix.
type Verdict struct {
	Status Status      `json:"status"`
	Say    string      `json:"say,omitempty"`
	Fix    string      `json:"fix,omitempty"`
	Kind   remote.Kind `json:"kind,omitempty"` // for ssh failures: what kind
}

func ok(format string, args ...any) Verdict {
	return Verdict{Status: OK, Say: fmt.Sprintf(format, args...)}
}

func warn(fix, format string, args ...any) Verdict {
	return Verdict{Status: Warn, Say: fmt.Sprintf(format, args...), Fix: fix}
}

func fail(fix, format string, args ...any) Verdict {
	return Verdict{Status: Fail, Say: fmt.Sprintf(format, args...), Fix: fix}
}

func skip(format string, args ...any) Verdict {
	return Verdict{Status: Skipped, Say: fmt.Sprintf(format, args...)}
}

// Node is what scrape check found out about one machinefile node.
type Node struct {
	Name     string          `json:"node"`
	Ready    bool            `json:"ready"`
	Local    bool            `json:"local,omitempty"`
	Shell    remote.Shell    `json:"shell,omitempty"`
	Platform remote.Platform `json:"platform,omitzero"`
	CPUs     int             `json:"cpus,omitempty"`
	Memory   int64           `json:"memory,omitempty"`
	Slots    int             `json:"slots"`
	// Offset is how far the node's clock is ahead of ours.
	Offset time.Duration `json:"clock_offset_ns"`

	Login   Verdict  `json:"login"`
	Binary  Verdict  `json:"binary"`
	WayBack Verdict  `json:"way_back"`
	Clock   Verdict  `json:"clock"`
	URL     *Verdict `json:"url,omitempty"`
	Fit     Verdict  `json:"memory_fit"`
	// Render is whether the node can render pages (--render): a Chromium
	// on its PATH, and the machinefile's render=.
	Render Verdict `json:"render"`
}

// checks lists the node's verdicts with their names, in table order.
func (n *Node) checks() []struct {
	name string
	v    Verdict
} {
	out := []struct {
		name string
		v    Verdict
	}{{"login", n.Login}, {"scrape", n.Binary}, {"way back", n.WayBack}, {"clock", n.Clock}}
	if n.URL != nil {
		out = append(out, struct {
			name string
			v    Verdict
		}{"url", *n.URL})
	}
	out = append(out, struct {
		name string
		v    Verdict
	}{"memory", n.Fit})
	if n.Render.Status == Fail {
		// A node without a browser is no news (the RENDER column says
		// it); one told render=yes without a browser cannot start.
		out = append(out, struct {
			name string
			v    Verdict
		}{"render", n.Render})
	}
	return out
}

// decide sets Ready: no check failed, and the login worked.
func (n *Node) decide() {
	n.Ready = n.Login.Status == OK
	for _, c := range n.checks() {
		if c.v.Status == Fail {
			n.Ready = false
		}
	}
}

// Report is the result of scrape check.
type Report struct {
	Nodes []*Node `json:"nodes"`
	Ready int     `json:"ready"`
	Total int     `json:"total"`
	// WayBack is the address and port the nodes were asked to dial.
	Listen string `json:"listen,omitempty"`
}

// AllReady reports whether every node is ready.
func (r *Report) AllReady() bool { return r.Ready == r.Total }

// Summary is the report's last line.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d of %d nodes ready", r.Ready, r.Total)
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as a table, one line per node, then what
// is wrong with each node and the likely fix, then the summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hasURL := false
	for _, n := range r.Nodes {
		hasURL = hasURL || n.URL != nil
	}
	head := "NODE\tREADY\tLOGIN\tPLATFORM\tCPUS\tMEMORY\tSCRAPE\tWAY BACK\tCLOCK"
	if hasURL {
		head += "\tURL"
	}
	hasRender := slices.ContainsFunc(r.Nodes, func(n *Node) bool { return n.Render.Status != "" })
	if hasRender {
		head += "\tRENDER"
	}
	fmt.Fprintln(tw, head)
	for _, n := range r.Nodes {
		platform, cpus, mem, clock := "-", "-", "-", cell(n.Clock)
		if n.Platform.Known() {
			platform = n.Platform.String()
		}
		if n.CPUs > 0 {
			cpus = fmt.Sprint(n.CPUs)
		}
		if n.Memory > 0 {
			mem = bytesize.Format(n.Memory)
			if n.Fit.Status != OK {
				mem += "!"
			}
		}
		if n.Clock.Status != Skipped {
			clock = fmt.Sprintf("%+.3fs", n.Offset.Seconds())
			if n.Clock.Status != OK {
				clock += "!"
			}
		}
		ready := "yes"
		if !n.Ready {
			ready = "NO"
		}
		line := strings.Join([]string{n.Name, ready, cell(n.Login), platform, cpus, mem, cell(n.Binary), cell(n.WayBack), clock}, "\t")
		if hasURL {
			u := "-"
			if n.URL != nil {
				u = cell(*n.URL)
			}
			line += "\t" + u
		}
		if hasRender {
			line += "\t" + map[Status]string{OK: "yes", Skipped: "no", Fail: "FAIL", "": "-"}[n.Render.Status]
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := true
	for _, n := range r.Nodes {
		for _, c := range n.checks() {
			if c.v.Status == OK || c.v.Status == Skipped && n.Login.Status != OK {
				continue
			}
			if first {
				fmt.Fprintln(w)
				first = false
			}
			fmt.Fprintf(w, "%s: %s: %s\n", n.Name, c.name, c.v.Say)
			if c.v.Fix != "" {
				fmt.Fprintf(w, "%s  fix: %s\n", strings.Repeat(" ", len(n.Name)), c.v.Fix)
			}
		}
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

func cell(v Verdict) string {
	switch v.Status {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	case Fail:
		return "FAIL"
	}
	return "-"
}
