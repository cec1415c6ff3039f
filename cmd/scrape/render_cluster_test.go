package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbrowser"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// browserMain matches the command line of a browser's main process: its
// children (renderers, zygote, utilities) carry --type=.
const browserMain = `chrom.*--remote-debugging-pipe`

// On a cluster where one host may render (the hosts share this machine's
// files, Chromium included, so the other says render=no), --render auto
// sends every script-made page to that host and plain pages to both; its
// browser, killed mid-run, is replaced and its pages retried; and no
// browser is left on any host after the run.
func TestClusterRender(t *testing.T) {
	testbrowser.RequireBrowser(t)
	c := testcluster.New(t, 2)
	site := testsite.NewJSAppAt(t, c.BridgeAddr)
	var urls []string
	for i := range 12 {
		urls = append(urls, fmt.Sprintf("%s/app/%d?slow=300", site.URL, i+1), fmt.Sprintf("%s/plain/%d", site.URL, i+1))
	}
	r := startClusterRun(t, c, "node1:2 render=yes\nnode2:2 render=no\n", urls, "--ignore-robots", "--render", "auto", "--render-slots", "2")
	r.waitRecords(t, 2)
	var killed []int
	waitFor(t, 60*time.Second, "a rendered page, then the browser on node1", func() bool {
		for _, rec := range readJSON(t, r.out) {
			if rec.Rendered {
				killed = c.Hosts[0].Pids(browserMain)
				return len(killed) > 0
			}
		}
		return false
	})
	for _, pid := range killed {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	if code := r.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	got := r.checkComplete(t)
	plainBy := map[string]int{}
	for line, rec := range got {
		if rec.Error != nil {
			t.Errorf("line %d %s: %+v", line, rec.URL, rec.Error)
			continue
		}
		app := strings.Contains(rec.URL, "/app/")
		switch {
		case app && (!rec.Rendered || rec.Node != "node1" || !strings.HasPrefix(rec.Title, "Widget ")):
			t.Errorf("%s: rendered %v on %s, title %q: want rendered on node1", rec.URL, rec.Rendered, rec.Node, rec.Title)
		case !app && rec.Rendered:
			t.Errorf("%s: a plain page was rendered", rec.URL)
		case !app:
			plainBy[rec.Node]++
		}
	}
	if plainBy["node2"] == 0 {
		t.Errorf("plain pages by node %v: node2, which does not render, fetched none", plainBy)
	}
	if !strings.Contains(r.stderr.String(), "browser died") {
		t.Errorf("the killed browser (%v) was not reported replaced:\n%s", killed, r.stderr.String())
	}
	for _, h := range c.Hosts {
		waitFor(t, 30*time.Second, "no browser on "+h.Name, func() bool { return len(h.Pids(`chrom`)) == 0 })
	}
}
