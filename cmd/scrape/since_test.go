package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// TestRunSince: scrape run --since on two local nodes, from a CSV output to
// a JSON one: the pages the site has not changed answer 304 and keep their
// earlier fields, the one it changed is fetched whole; a malformed --since
// file stops the run with its line.
func TestRunSince(t *testing.T) {
	const pages, changed = 40, 5
	site, base := startSite(t, pages)
	var urls strings.Builder
	want := map[int]string{}
	for i := range pages {
		u := fmt.Sprintf("%s/fresh/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	urlsFile := writeFile(t, "urls.txt", urls.String())
	mf := writeFile(t, "machinefile", "localhost:2\n127.0.0.1:2\n")
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.csv"), filepath.Join(dir, "second.json")

	run := func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := scrapeCmd(t, ctx, append([]string{"run", "-q", "-f", mf, urlsFile}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}
	if stderr, err := run("-o", first); err != nil {
		t.Fatalf("first run: %v\n%s", err, stderr)
	}
	firstBytes := site.BodyBytes()
	site.Change(changed)
	if stderr, err := run("-o", second, "--since", first); err != nil {
		t.Fatalf("second run: %v\n%s", err, stderr)
	}
	served := site.BodyBytes() - firstBytes

	got := byLine(t, readJSON(t, second), want)
	var fetched int64
	for line, r := range got {
		fetched += r.Bytes
		n := line - 1
		if r.Error != nil || r.Title != testsite.Title(n) || r.SHA256 == "" || r.ETag == "" {
			t.Errorf("%s: %+v, want the page, its sum and its ETag", r.URL, r.Result)
		}
		if wantUnchanged := n != changed; r.Unchanged != wantUnchanged || (r.Status == 304) != wantUnchanged {
			t.Errorf("%s: status %d, unchanged %v; want unchanged %v", r.URL, r.Status, r.Unchanged, wantUnchanged)
		}
	}
	if served != fetched || served == 0 || served > firstBytes/10 {
		t.Errorf("the second run was served %d body bytes and read %d; the first was served %d", served, fetched, firstBytes)
	}

	bad := writeFile(t, "bad.jsonl", "{\"url\":\""+base+"/fresh/0\"}\nnot json\n")
	stderr, err := run("-o", filepath.Join(dir, "third.jsonl"), "--since", bad)
	if err == nil || !strings.Contains(stderr, "line 2") || !strings.Contains(stderr, bad) {
		t.Errorf("a malformed --since: %v, stderr %q; want a failure naming %s, line 2", err, stderr, bad)
	}
}
