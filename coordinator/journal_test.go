package coordinator

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/scrape-cluster/scrape/output"
)

func TestJournalReplaysCommitsAndDropsATornLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, journalFile)
	j, err := openJournal(dir, recovered{})
	if err != nil {
		t.Fatal(err)
	}
	ref := chunkRef{Seg: 1, Off: 0, Len: 30, N: 2, Last: crawlIDBase + 2}
	j.markDone(1)
	j.markDone(3)
	j.markFound([]hostRefs{{Host: "a", Scheme: "http", Refs: []chunkRef{ref}}})
	if err := j.commit(output.Pos{Offset: 100, Records: 2}); err != nil {
		t.Fatal(err)
	}
	if err := j.commit(output.Pos{Offset: 100, Records: 2}); err != nil { // nothing new: no line
		t.Fatal(err)
	}
	j.markDone(crawlIDBase + 1)
	if err := j.commit(output.Pos{Offset: 180, Records: 3}); err != nil {
		t.Fatal(err)
	}
	j.close()
	whole, _ := os.ReadFile(path)
	// A crash in the middle of the next write.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"n":3,"out":{"offset":250,"records":4},"done":[`)
	f.Close()

	rec, err := recoverRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Out != (output.Pos{Offset: 180, Records: 3}) || rec.N != 2 {
		t.Errorf("Out = %+v, N = %d; want the last whole commit's", rec.Out, rec.N)
	}
	if !reflect.DeepEqual(rec.InputDone, idRanges{{1, 1}, {3, 3}}) || len(rec.Done) != 1 || !rec.Done[crawlIDBase+1] {
		t.Errorf("InputDone = %v, Done = %v", rec.InputDone, rec.Done)
	}
	if len(rec.Hosts) != 1 || rec.Hosts[0].Host != "a" || !reflect.DeepEqual(rec.Hosts[0].Refs, []chunkRef{ref}) {
		t.Errorf("Hosts = %+v", rec.Hosts)
	}
	if rec.Valid != int64(len(whole)) {
		t.Errorf("Valid = %d, want %d (the whole lines)", rec.Valid, len(whole))
	}

	// Reopened at Valid, the torn line is gone and a new commit reads back.
	j, err = openJournal(dir, rec)
	if err != nil {
		t.Fatal(err)
	}
	j.markDone(2)
	if err := j.commit(output.Pos{Offset: 200, Records: 4}); err != nil {
		t.Fatal(err)
	}
	j.close()
	rec, err = recoverRun(dir)
	if err != nil || !rec.InputDone.has(2) || rec.Out.Records != 4 || rec.N != 3 {
		t.Errorf("after reopening: %+v, %v", rec, err)
	}
}

func TestRecoverANewRun(t *testing.T) {
	rec, err := recoverRun(t.TempDir())
	if err != nil || len(rec.Done) != 0 || len(rec.InputDone) != 0 || rec.Valid != 0 || rec.N != 0 {
		t.Errorf("nothing to recover: %+v, %v", rec, err)
	}
}

func TestIDRanges(t *testing.T) {
	tests := []struct {
		add  []uint64
		want idRanges
	}{
		{nil, nil},
		{[]uint64{5}, idRanges{{5, 5}}},
		{[]uint64{1, 2, 3}, idRanges{{1, 3}}},
		{[]uint64{3, 2, 1}, idRanges{{1, 3}}},
		{[]uint64{1, 3, 2}, idRanges{{1, 3}}},
		{[]uint64{1, 3, 5, 3, 7}, idRanges{{1, 1}, {3, 3}, {5, 5}, {7, 7}}},
		{[]uint64{10, 1, 5, 4, 6, 2}, idRanges{{1, 2}, {4, 6}, {10, 10}}},
	}
	for _, tt := range tests {
		var r idRanges
		for _, id := range tt.add {
			r.add(id)
		}
		if !reflect.DeepEqual(r, tt.want) {
			t.Errorf("add %v: %v, want %v", tt.add, r, tt.want)
		}
		for id := range uint64(12) {
			in := false
			for _, a := range tt.add {
				in = in || a == id
			}
			if r.has(id) != in {
				t.Errorf("add %v: has(%d) = %v", tt.add, id, !in)
			}
		}
	}
}
