package queue

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/scrape"
)

func TestTasksRoundTrip(t *testing.T) {
	run := Run{ID: "ABC"}
	in := []scrape.Task{
		{ID: 42, URL: "http://x/", Line: 42, Attempt: 2, Token: "t42", Prompt: true},
		{ID: 43, URL: "http://x/b", Line: 43, Attempt: 1, Token: "t43", Delay: time.Second, Listed: true, Cookies: "sid=1; b=2"},
	}
	m, err := EncodeTasks(run, in)
	if err != nil {
		t.Fatal(err)
	}
	// A batch is named by its first task's attempt, which is released once.
	if m.Subject != run.TaskSubject() || m.Header.Get(nats.MsgIdHdr) != "42.2" {
		t.Errorf("subject %q msg id %q", m.Subject, m.Header.Get(nats.MsgIdHdr))
	}
	out, err := DecodeTasks(m.Data)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Errorf("decoded %+v, %v; want %+v", out, err, in)
	}
	for _, bad := range []string{"", "{}", "[]", `[{"id":1}]`, `[{"id":1,"url":"http://x/"},{"url":"http://y/"}]`, "[1]"} {
		if _, err := DecodeTasks([]byte(bad)); err == nil {
			t.Errorf("DecodeTasks(%q) accepted", bad)
		}
	}
	// Render tasks go to their own subject, which only renderers pull.
	rm, err := EncodeTasks(run, []scrape.Task{{ID: 44, URL: "http://x/app", Attempt: 1, Render: true}})
	if err != nil || rm.Subject != run.RenderSubject() {
		t.Errorf("render task: subject %q, %v", rm.Subject, err)
	}
	if rt, err := DecodeTasks(rm.Data); err != nil || !rt[0].Render {
		t.Errorf("render task decoded %+v, %v", rt, err)
	}
	if _, err := EncodeTasks(run, nil); err == nil {
		t.Error("an empty batch was encoded")
	}
}

// fullResult sets every field a worker sends.
func fullResult() scrape.Result {
	return scrape.Result{
		URL: "http://x/a", Line: 3, Depth: 1, Parent: "http://x/", Node: "n1", FinalURL: "http://x/b", Status: 200, ContentType: "text/html",
		Title: "T <&> \u2028", Description: "d", Headings: []string{"h1", ""}, Links: []string{"http://x/c"},
		Fields: map[string][]string{"price": {"1", "2"}, "none": nil}, Text: "body text", Data: []byte(`{"jsonld":[{"@type":"Thing"}]}`),
		Bytes: 12345, DurationMS: 17, FetchedAt: time.Date(2026, 12, 3, 18, 0, 0, 123456789, time.UTC),
		Worker: "host:1", Attempts: 2, RetryAfter: 3 * time.Second, Proxy: "socks5://p:1080",
		SetCookies: []scrape.SetCookie{{URL: "http://x/login", Header: "sid=1; Path=/; HttpOnly"}, {URL: "http://x/b", Header: "b=2"}},
		// --since
		ETag: `W/"abc"`, LastModified: "Wed, 02 Dec 2026 10:00:00 GMT", SHA256: strings.Repeat("ab", 32), Unchanged: true,
		// --render
		Rendered: true,
	}
}

func TestResultsRoundTrip(t *testing.T) {
	run := Run{ID: "ABC"}
	failed := scrape.Result{URL: "http://x/e", Error: scrape.Errorf(scrape.KindHTTPStatus, "503"), Status: 503, RetryAfter: time.Minute,
		NeedsRender: "script-only body"}
	tasks := []scrape.Task{{ID: 7, Attempt: 1, Token: "tok7"}, {ID: 1 << 41, Attempt: 3, Token: "tok8"}}
	results := []scrape.Result{fullResult(), failed}
	var b ResultBatch
	for i := range tasks {
		b.Add(EncodeResult(tasks[i], &results[i], 1<<20))
	}
	m := b.Msg(run, "w1")
	if m.Subject != run.ResultSubject("w1") || m.Header.Get(HeaderResults) != "2" {
		t.Errorf("subject %q, %s %q", m.Subject, HeaderResults, m.Header.Get(HeaderResults))
	}
	var i int
	err := DecodeResults(run, m.Subject, m.Data, func(meta ResultMeta, r *scrape.Result) {
		want := results[i]
		wantMeta := ResultMeta{Task: tasks[i].ID, Attempt: tasks[i].Attempt, Token: tasks[i].Token, Worker: "w1",
			Status: want.Status, Bytes: want.Bytes, RetryAfter: want.RetryAfter, Took: time.Duration(want.DurationMS) * time.Millisecond, NeedsRender: want.NeedsRender, Unchanged: want.Unchanged}
		if want.Error != nil {
			wantMeta.Kind, wantMeta.Message = want.Error.Kind, want.Error.Message
		}
		if meta != wantMeta {
			t.Errorf("result %d: meta %+v, want %+v", i, meta, wantMeta)
		}
		// What the coordinator writes is the JSON of the record: the
		// same bytes as the worker's own would have been.
		got, _ := json.Marshal(r)
		exp, _ := json.Marshal(&want)
		if string(got) != string(exp) || r.RetryAfter != want.RetryAfter {
			t.Errorf("result %d:\n got %s\nwant %s", i, got, exp)
		}
		i++
	})
	if err != nil || i != 2 {
		t.Fatalf("decoded %d results, %v", i, err)
	}
}

func TestResultTrimming(t *testing.T) {
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
		{"ok", scrape.Result{URL: "http://x/", Links: links[:3]}, 1 << 20, "", 3},
		{"error", scrape.Result{URL: "http://x/", Error: scrape.Errorf(scrape.KindTimeout, "slow")}, 1 << 20, scrape.KindTimeout, 0},
		{"too big for the queue", scrape.Result{URL: "http://x/", Links: links}, 16 << 10, scrape.KindTooLarge, 0},
		{"too big, and an error already", scrape.Result{URL: "http://x/", Links: links, Error: scrape.Errorf(scrape.KindBadBody, "cut")}, 16 << 10, scrape.KindBadBody, 0},
	}
	for _, tt := range tests {
		frame := EncodeResult(scrape.Task{ID: 7, Attempt: 1}, &tt.res, tt.max)
		if len(frame) > tt.max {
			t.Errorf("%s: %d bytes exceed %d", tt.name, len(frame), tt.max)
		}
		var b ResultBatch
		b.Add(frame)
		n := 0
		err := DecodeResults(Run{ID: "R"}, "scrape.R.result.w1", b.Msg(Run{ID: "R"}, "w1").Data, func(meta ResultMeta, r *scrape.Result) {
			n++
			if meta.Task != 7 || meta.Kind != tt.wantKind || len(r.Links) != tt.wantLinks {
				t.Errorf("%s: meta %+v, %d links; want kind %q, %d links", tt.name, meta, len(r.Links), tt.wantKind, tt.wantLinks)
			}
		})
		if err != nil || n != 1 {
			t.Errorf("%s: %d results, %v", tt.name, n, err)
		}
	}
}

// TestDecodeResultsRefusesWhole: a message that is not a whole batch hands
// on none of its results, not even the readable ones before the damage.
func TestDecodeResultsRefusesWhole(t *testing.T) {
	run := Run{ID: "R"}
	r := fullResult()
	good := EncodeResult(scrape.Task{ID: 1, Attempt: 1, Token: "a"}, &r, 0)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"json, as protocol 3 sent", []byte(`{"url":"http://x/","status":200}`)},
		{"cut short", append(append([]byte{}, good...), good[:len(good)-1]...)},
		{"a byte too many", append(append([]byte{}, good...), 0)},
		{"no task", EncodeResult(scrape.Task{ID: 0, Attempt: 1}, &r, 0)},
		{"a length past the end", append(append([]byte{}, good...), 1, 1, 0, 0xff, 0xff, 0xff, 0x0f)},
	}
	for _, tt := range tests {
		n := 0
		err := DecodeResults(run, "scrape.R.result.w1", tt.data, func(ResultMeta, *scrape.Result) { n++ })
		if err == nil || n != 0 {
			t.Errorf("%s: %d results handed on, error %v", tt.name, n, err)
		}
	}
}

// FuzzDecodeResults: any bytes a worker sends are decoded or refused,
// without a panic, and what decodes encodes again to the same frames.
func FuzzDecodeResults(f *testing.F) {
	r := fullResult()
	r.Exchange = &scrape.Exchange{Request: "GET / HTTP/1.1\r\n\r\n", Response: "HTTP/1.1 200 OK\r\n\r\n", Body: "<p>"}
	r.Resources = []scrape.Exchange{{URL: "http://x/a.js", Response: "HTTP/1.1 200 OK\r\n\r\n", Body: "x=1", Truncated: true}}
	var b ResultBatch
	b.Add(EncodeResult(scrape.Task{ID: 9, Attempt: 2, Token: "t"}, &r, 0))
	f.Add(b.buf)
	f.Add([]byte(strconv.Itoa(ProtocolVersion)))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The decoder's varints read as the standard library's do.
		if v, n := uvarint(string(data)); n > 0 {
			if v2, n2 := binary.Uvarint(data); v != v2 || n != n2 {
				t.Fatalf("uvarint %x: %d (%d bytes), binary.Uvarint %d (%d bytes)", data, v, n, v2, n2)
			}
		}
		var again ResultBatch
		err := DecodeResults(Run{ID: "R"}, "scrape.R.result.w", data, func(meta ResultMeta, r *scrape.Result) {
			if meta.Task == 0 {
				t.Fatal("a result without a task was handed on")
			}
			again.Add(EncodeResult(scrape.Task{ID: meta.Task, Attempt: meta.Attempt, Token: meta.Token}, r, 0))
		})
		if err != nil {
			return
		}
		n := 0
		if err := DecodeResults(Run{ID: "R"}, "scrape.R.result.w", again.buf, func(ResultMeta, *scrape.Result) { n++ }); err != nil || n != again.Len() {
			t.Fatalf("re-encoded batch: %d of %d, %v", n, again.Len(), err)
		}
	})
}

// A task message offered again says so, and has a message ID of its own, so
// that the task stream does not drop it as the first offer's duplicate.
func TestTasksAgain(t *testing.T) {
	run := Run{ID: "R"}
	ts := []scrape.Task{{ID: 7, URL: "http://a/7", Attempt: 2, Token: "tok7"}, {ID: 8, URL: "http://a/8", Attempt: 1, Token: "tok8"}}
	first, err := EncodeTasks(run, ts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EncodeTasksAgain(run, ts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  *nats.Msg
		want bool
	}{
		{"the first offer", first, false},
		{"offered again", again, true},
		{"no headers", &nats.Msg{Subject: run.TaskSubject(), Data: first.Data}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Again(tt.msg.Header); got != tt.want {
				t.Errorf("Again = %v, want %v", got, tt.want)
			}
		})
	}
	if id, firstID := again.Header.Get(nats.MsgIdHdr), first.Header.Get(nats.MsgIdHdr); id == firstID || id == "" {
		t.Errorf("message IDs %q and %q: want the copy's its own", id, firstID)
	}
	if again.Subject != first.Subject || string(again.Data) != string(first.Data) {
		t.Error("the copy is not the same tasks on the same subject")
	}
}

// A page's request and response (--warc) come through whole, or cut to
// the queue's largest record with Truncated set, before anything else of
// the record is given up.
func TestExchangeRoundTrip(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 4<<10) // 64 KiB
	full := &scrape.Exchange{Request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Response: "HTTP/1.1 200 OK\r\n\r\n", Body: body, IP: "127.0.0.1"}
	tests := []struct {
		name          string
		ex            *scrape.Exchange
		max           int
		wantTruncated bool
	}{
		{"none", nil, 1 << 20, false},
		{"whole", full, 1 << 20, false},
		{"cut at max-body already", &scrape.Exchange{Response: "HTTP/1.1 200 OK\r\n\r\n", Body: "abc", Truncated: true}, 1 << 20, true},
		{"cut to fit the queue", full, 16 << 10, true},
	}
	for _, tt := range tests {
		res := fullResult()
		res.Exchange = tt.ex
		frame := EncodeResult(scrape.Task{ID: 7, Attempt: 1}, &res, tt.max)
		if len(frame) > tt.max {
			t.Errorf("%s: %d bytes exceed %d", tt.name, len(frame), tt.max)
		}
		var b ResultBatch
		b.Add(frame)
		n := 0
		err := DecodeResults(Run{ID: "R"}, "scrape.R.result.w1", b.Msg(Run{ID: "R"}, "w1").Data, func(meta ResultMeta, r *scrape.Result) {
			n++
			if len(r.Links) != len(res.Links) || meta.Kind != "" {
				t.Errorf("%s: %d links, kind %q: the record lost more than body", tt.name, len(r.Links), meta.Kind)
			}
			switch got := r.Exchange; {
			case tt.ex == nil:
				if got != nil {
					t.Errorf("%s: an exchange came out of none: %+v", tt.name, got)
				}
			case got == nil:
				t.Errorf("%s: the exchange was lost", tt.name)
			case got.Request != tt.ex.Request || got.Response != tt.ex.Response || got.IP != tt.ex.IP || got.Truncated != tt.wantTruncated:
				t.Errorf("%s: got %+.60v, want %+.60v truncated %v", tt.name, *got, *tt.ex, tt.wantTruncated)
			case !strings.HasPrefix(tt.ex.Body, got.Body) || (!tt.wantTruncated || tt.ex.Truncated) && got.Body != tt.ex.Body:
				t.Errorf("%s: body of %d bytes, not the %d sent or a prefix of them", tt.name, len(got.Body), len(tt.ex.Body))
			case tt.wantTruncated && !tt.ex.Truncated && len(got.Body) < len(tt.ex.Body)/8:
				t.Errorf("%s: body cut to %d bytes, far below what fits %d", tt.name, len(got.Body), tt.max)
			}
		})
		if err != nil || n != 1 {
			t.Errorf("%s: %d results, %v", tt.name, n, err)
		}
	}
}

// A rendered page's other exchanges come through with their URLs, or, when
// the record is too large for the queue, the last of them are given up
// before the page's own exchange is cut.
func TestResourcesRoundTrip(t *testing.T) {
	page := &scrape.Exchange{Request: "GET / HTTP/1.1\r\n\r\n", Response: "HTTP/1.1 200 OK\r\n\r\n", Body: strings.Repeat("p", 4<<10)}
	var resources []scrape.Exchange
	for i := range 3 {
		resources = append(resources, scrape.Exchange{URL: fmt.Sprintf("http://x/s/%d.js", i), Request: "GET /s HTTP/1.1\r\n\r\n",
			Response: "HTTP/1.1 200 OK\r\n\r\n", Body: strings.Repeat("s", 8<<10), IP: "10.0.0.1"})
	}
	tests := []struct {
		name string
		max  int
		want int  // resources that come through
		cut  bool // and the page's own body cut too
	}{
		{"all", 1 << 20, 3, false},
		{"the last given up", 24 << 10, 2, false},
		{"every one given up", 8 << 10, 0, false},
		{"and the page's body cut", 3 << 10, 0, true},
	}
	for _, tt := range tests {
		res := fullResult()
		res.Exchange, res.Resources = page, resources
		frame := EncodeResult(scrape.Task{ID: 7, Attempt: 1}, &res, tt.max)
		var b ResultBatch
		b.Add(frame)
		n := 0
		err := DecodeResults(Run{ID: "R"}, "scrape.R.result.w1", b.Msg(Run{ID: "R"}, "w1").Data, func(meta ResultMeta, r *scrape.Result) {
			n++
			if len(r.Resources) != tt.want || tt.want > 0 && !reflect.DeepEqual(r.Resources, resources[:tt.want]) {
				t.Errorf("%s: %d resources came through, want the first %d of them whole", tt.name, len(r.Resources), tt.want)
			}
			if r.Exchange == nil || r.Exchange.Truncated != tt.cut || len(r.Links) != len(res.Links) {
				t.Errorf("%s: page exchange %v, %d links: the page lost more than its resources", tt.name, r.Exchange != nil, len(r.Links))
			}
		})
		if err != nil || n != 1 {
			t.Errorf("%s: %d results, %v", tt.name, n, err)
		}
	}
}
