package queue

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/scrape"
)

func TestCompressRoundTrip(t *testing.T) {
	run := Run{ID: "ABC"}
	page := fullResult()
	for i := range 40 {
		page.Links = append(page.Links, "http://x/section/page/"+strings.Repeat("n", i%7))
	}
	tests := []struct {
		name       string
		frames     int
		compressed bool
	}{
		{"a batch of pages that share their site shrinks", 20, true},
		// A result whose fields are noise: s2 finds nothing to take out.
		{"a result that does not shrink stays as it is", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b ResultBatch
			tasks := []scrape.Task{{ID: 1, Attempt: 1, Token: "tok1"}}
			if tt.frames == 0 {
				noise := make([]byte, 512)
				rand.NewChaCha8([32]byte{1}).Read(noise)
				b.Add(EncodeResult(tasks[0], &scrape.Result{Status: 200, Title: string(noise)}, 0))
			}
			for i := range tt.frames {
				tk := scrape.Task{ID: uint64(i + 1), Attempt: 1, Token: "tok"}
				b.Add(EncodeResult(tk, &page, 0))
			}
			plain := bytes.Clone(b.buf)
			m := b.Msg(run, "w1")
			buf := Compress(m, nil)
			if got := m.Header.Get(HeaderEncoding) != ""; got != tt.compressed {
				t.Fatalf("compressed %v, want %v (%d bytes of %d)", got, tt.compressed, len(m.Data), len(plain))
			}
			if !bytes.Equal(b.buf, plain) {
				t.Error("Compress changed the batch's own buffer")
			}
			if tt.compressed && len(m.Data)*3 > len(plain) {
				t.Errorf("%d bytes compressed to %d: less than a third off", len(plain), len(m.Data))
			}
			data, err := ResultData(m.Header, m.Data, len(plain))
			if err != nil || !bytes.Equal(data, plain) {
				t.Fatalf("ResultData: %v, %d bytes; want the %d of the batch", err, len(data), len(plain))
			}
			// The buffer Compress hands back is the next message's: what
			// ResultData returned must not share it.
			m2 := b.Msg(run, "w1")
			m2.Data = bytes.Repeat([]byte{'z'}, len(plain))
			Compress(m2, buf)
			if !bytes.Equal(data, plain) {
				t.Error("a later Compress changed what ResultData returned")
			}
		})
	}
}

func TestResultDataRefuses(t *testing.T) {
	// claims is an s2 block that says it decodes to n bytes, and holds none.
	claims := func(n int) []byte { return binary.AppendUvarint(nil, uint64(n)) }
	m := &nats.Msg{Data: bytes.Repeat([]byte("http://x/page/1,"), 100)}
	Compress(m, nil)
	tests := []struct {
		name     string
		encoding string
		data     []byte
		limit    int
	}{
		{"more than the limit, by its own account", "s2", claims(1 << 30), 8 << 20},
		{"just past the limit", "s2", m.Data, 1599},
		{"cut short", "s2", m.Data[:len(m.Data)/2], 8 << 20},
		{"not s2 at all", "s2", []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), 8 << 20},
		{"an encoding this build does not know", "gzip", m.Data, 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			h.Set(HeaderEncoding, tt.encoding)
			if data, err := ResultData(h, tt.data, tt.limit); err == nil {
				t.Errorf("accepted, %d bytes", len(data))
			}
		})
	}
	// The limit itself is allowed.
	if data, err := ResultData(m.Header, m.Data, 1600); err != nil || len(data) != 1600 {
		t.Errorf("at the limit: %v, %d bytes", err, len(data))
	}
}

// FuzzResultData: whatever a compressed message holds, ResultData returns
// no more than its limit, or an error, and never panics.
func FuzzResultData(f *testing.F) {
	m := &nats.Msg{Data: bytes.Repeat([]byte("http://x/page/1,"), 100)}
	Compress(m, nil)
	f.Add(m.Data)
	f.Add(binary.AppendUvarint(nil, 1<<30))
	f.Add([]byte{})
	h := nats.Header{}
	h.Set(HeaderEncoding, encodingS2)
	const limit = 1 << 12
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ResultData(h, data, limit)
		if err == nil && len(out) > limit {
			t.Fatalf("%d bytes past the limit of %d", len(out), limit)
		}
	})
}
