package queue

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/scrape"
)

func TestReadBootstrap(t *testing.T) {
	version := `{"version":` + strconv.Itoa(ProtocolVersion)
	good := version + `,"servers":["nats://10.0.0.1:4222"],"user":"u","password":"p","run":"R","node":"n","slots":4}`
	tests := []struct {
		name, in, err string
	}{
		{"good", good + "\n", ""},
		{"good without newline", good, ""},
		{"empty", "", "read bootstrap from stdin"},
		{"not json", "hello\n", "decode bootstrap"},
		{"other version", `{"version":99,"servers":["x"],"run":"R"}` + "\n", "protocol 99"},
		{"no server", version + `,"run":"R"}` + "\n", "no server"},
		{"too long", strings.Repeat("x", 5<<20), "too long"},
	}
	for _, tt := range tests {
		r := bufio.NewReaderSize(strings.NewReader(tt.in+"\nlifeline"), maxBootstrap)
		b, err := ReadBootstrap(r)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if b.Password != "p" || b.Slots != 4 || b.Servers[0] != "nats://10.0.0.1:4222" {
				t.Errorf("%s: %+v", tt.name, b)
			}
			// The reader is left at the lifeline, not past it.
			rest, _ := io.ReadAll(r)
			if !strings.Contains(string(rest), "lifeline") {
				t.Errorf("%s: bootstrap read too far, left %q", tt.name, rest)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.err)
		}
	}
}

func TestTaskRoundTrip(t *testing.T) {
	run := Run{ID: "ABC"}
	in := scrape.Task{ID: 42, URL: "http://x/", Line: 42, Attempt: 2}
	m, err := EncodeTask(run, in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != run.TaskSubject() || m.Header.Get(nats.MsgIdHdr) != "42.2" {
		t.Errorf("subject %q msg id %q", m.Subject, m.Header.Get(nats.MsgIdHdr))
	}
	out, err := DecodeTask(m.Data)
	if err != nil || out != in {
		t.Errorf("decoded %+v, %v; want %+v", out, err, in)
	}
	for _, bad := range []string{"", "{}", `{"id":1}`, "[1]"} {
		if _, err := DecodeTask([]byte(bad)); err == nil {
			t.Errorf("DecodeTask(%q) accepted", bad)
		}
	}
}

func TestResultHeadersAndTrimming(t *testing.T) {
	run := Run{ID: "ABC"}
	task := scrape.Task{ID: 7, URL: "http://x/", Attempt: 1}
	links := make([]string, 2000)
	for i := range links {
		links[i] = "http://example.com/a/long/path/to/page/number/" + strings.Repeat("x", 40)
	}
	tests := []struct {
		name      string
		res       scrape.Result
		max       int
		wantKind  string
		wantLinks int
	}{
		{"ok", scrape.Result{URL: "http://x/", Node: "n1", Bytes: 99, Links: links[:3]}, 1 << 20, "", 3},
		{"error", scrape.Result{URL: "http://x/", Error: scrape.Errorf(scrape.KindTimeout, "slow")}, 1 << 20, scrape.KindTimeout, 0},
		{"too big for the queue", scrape.Result{URL: "http://x/", Links: links}, 16 << 10, scrape.KindTooLarge, 0},
	}
	for _, tt := range tests {
		m, err := EncodeResult(run, "w1", task, &tt.res, tt.max)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > tt.max {
			t.Errorf("%s: %d bytes exceed %d", tt.name, len(m.Data), tt.max)
		}
		meta, err := DecodeResultMeta(run, m.Subject, m.Header)
		if err != nil {
			t.Fatal(err)
		}
		if meta.Task != 7 || meta.Kind != tt.wantKind || meta.Bytes != tt.res.Bytes || meta.Node != tt.res.Node {
			t.Errorf("%s: meta %+v", tt.name, meta)
		}
		var back scrape.Result
		if err := json.Unmarshal(m.Data, &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Links) != tt.wantLinks {
			t.Errorf("%s: %d links, want %d", tt.name, len(back.Links), tt.wantLinks)
		}
	}
	if _, err := DecodeResultMeta(Run{ID: "R"}, "scrape.R.result.w1", nats.Header{}); err == nil {
		t.Error("result without task header accepted")
	}
}
