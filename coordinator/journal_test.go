package coordinator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

func TestJournalReplaysCommitsAndDropsATornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), journalFile)
	j, err := openJournal(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.markDone(1)
	j.markDone(3)
	j.markFound(scrape.Task{ID: crawlIDBase + 1, URL: "http://a/x", Depth: 1})
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
	f.WriteString(`{"out":{"offset":250,"records":4},"done":[`)
	f.Close()

	rec, err := readJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Out != (output.Pos{Offset: 180, Records: 3}) {
		t.Errorf("Out = %+v, want the last whole commit's", rec.Out)
	}
	if len(rec.Done) != 3 || !rec.Done[1] || !rec.Done[3] || !rec.Done[crawlIDBase+1] || rec.Done[2] {
		t.Errorf("Done = %v", rec.Done)
	}
	if len(rec.Found) != 1 || rec.Found[0].URL != "http://a/x" {
		t.Errorf("Found = %+v", rec.Found)
	}
	if rec.Valid != int64(len(whole)) {
		t.Errorf("Valid = %d, want %d (the whole lines)", rec.Valid, len(whole))
	}

	// Reopened at Valid, the torn line is gone and a new commit reads back.
	j, err = openJournal(path, rec.Valid)
	if err != nil {
		t.Fatal(err)
	}
	j.markDone(2)
	if err := j.commit(output.Pos{Offset: 200, Records: 4}); err != nil {
		t.Fatal(err)
	}
	j.close()
	rec, err = readJournal(path)
	if err != nil || !rec.Done[2] || rec.Out.Records != 4 {
		t.Errorf("after reopening: %+v, %v", rec, err)
	}
}

func TestReadJournalOfANewRun(t *testing.T) {
	rec, err := readJournal(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(rec.Done) != 0 || rec.Valid != 0 {
		t.Errorf("missing journal: %+v, %v", rec, err)
	}
}
