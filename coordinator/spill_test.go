package coordinator

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestChunkRoundTrip(t *testing.T) {
	tests := map[string][]candidate{
		"one": {{id: crawlIDBase + 1, url: "http://a/x", parent: "http://a/", depth: 1}},
		"siblings": {
			{id: crawlIDBase + 7, url: "http://a/p/1", parent: "http://a/p", depth: 2, listed: true},
			{id: crawlIDBase + 8, url: "http://a/p/10", parent: "http://a/p", depth: 2, listed: true},
			{id: crawlIDBase + 9, url: "http://a/q", parent: "http://a/p", depth: 2},
		},
		"from a sitemap": {
			{id: crawlIDBase + 3, url: "http://a/p/1", parent: "http://a/sitemap.xml", listed: true, lastmod: "2026-11-30"},
			{id: crawlIDBase + 4, url: "http://a/p/2", parent: "http://a/sitemap.xml", lastmod: "2026-11-30T10:00:00+01:00"},
			{id: crawlIDBase + 5, url: "http://a/p/3", parent: "http://a/sitemap.xml", listed: true},
		},
		"parents change": {
			{id: crawlIDBase + 1, url: "https://b/é?q=1", parent: "https://b/", depth: 1},
			{id: crawlIDBase + 1<<20, url: "https://b/", parent: "https://b/x", depth: 3},
			{id: crawlIDBase + 1<<20 + 1, url: "https://b/", parent: "", depth: 0},
		},
	}
	for name, cands := range tests {
		b := encodeChunk(nil, cands)
		got, err := decodeChunk(b, len(cands))
		if err != nil || !reflect.DeepEqual(got, cands) {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, cands)
		}
		// A chunk cut short, or read as holding more than it does, is an
		// error, never candidates made up.
		if _, err := decodeChunk(b[:len(b)-1], len(cands)); err == nil {
			t.Errorf("%s: a cut chunk decoded", name)
		}
		if _, err := decodeChunk(b, len(cands)+1); err == nil {
			t.Errorf("%s: decoded one candidate more than written", name)
		}
	}
}

// The store writes chunks to segments, reads them back past their Skip,
// starts a new segment when one is full or the store is opened again, and
// removes the segments no log points into.
func TestSpillStoreSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), frontierDir)
	s := &spillStore{dir: dir}
	t.Cleanup(func() { s.close() })
	var refs []chunkRef
	var all [][]candidate
	for i := range 3 {
		var cands []candidate
		for k := range 5 {
			cands = append(cands, candidate{id: crawlIDBase + uint64(10*i+k+1), url: fmt.Sprintf("http://h/%d/%d", i, k), parent: "http://h/", depth: 1})
		}
		ref, err := s.write(cands)
		if err != nil {
			t.Fatal(err)
		}
		if ref.Last != cands[4].id || ref.N != 5 {
			t.Errorf("ref %+v", ref)
		}
		refs, all = append(refs, ref), append(all, cands)
		s.size = segmentMax // the next write begins a segment
	}
	for i, ref := range refs {
		if ref.Seg != uint32(i+1) {
			t.Errorf("chunk %d in segment %d", i, ref.Seg)
		}
		ref.Skip = 2
		got, err := s.read(ref)
		if err != nil || !reflect.DeepEqual(got, all[i][2:]) {
			t.Errorf("chunk %d: %+v, %v", i, got, err)
		}
	}
	// A store opened again, as a resumed run's, writes after the others.
	s2 := &spillStore{dir: dir}
	ref, err := s2.write(all[0])
	s2.close()
	if err != nil || ref.Seg != 4 {
		t.Fatalf("resumed store wrote to segment %d, %v", ref.Seg, err)
	}
	s.seg = 3
	if err := s.collect(map[uint32]bool{2: true}); err != nil {
		t.Fatal(err)
	}
	segs, _ := segments(dir)
	if !reflect.DeepEqual(segs, []uint32{2, 3}) {
		t.Errorf("after collect: segments %v, want the live one and the one being written", segs)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(1))); err == nil {
		t.Error("segment 1 kept")
	}
}
