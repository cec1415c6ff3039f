package output

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResume is the output's part of surviving a killed run: a file cut at
// any point after the last Flush, reopened at that Flush's Pos, ends up
// exactly as if the run had never stopped.
func TestResume(t *testing.T) {
	urls := []string{"a", "b", "c", "d", "e"}
	rec := func(u string) []byte { return []byte(`{"url":"` + u + `","line":1}`) }
	tests := []struct {
		format Format
		read   func(t *testing.T, data []byte) []string
	}{
		{JSON, func(t *testing.T, data []byte) []string {
			var got []struct{ URL string }
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatalf("not a JSON array: %v\n%s", err, data)
			}
			var out []string
			for _, r := range got {
				out = append(out, r.URL)
			}
			return out
		}},
		{JSONL, func(t *testing.T, data []byte) []string {
			var out []string
			for line := range strings.Lines(string(data)) {
				var r struct{ URL string }
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				out = append(out, r.URL)
			}
			return out
		}},
		{CSV, func(t *testing.T, data []byte) []string {
			rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
			if err != nil {
				t.Fatalf("not CSV: %v\n%s", err, data)
			}
			if len(rows) == 0 || rows[0][0] != "url" {
				t.Fatalf("no header: %q", rows)
			}
			var out []string
			for _, r := range rows[1:] {
				out = append(out, r[0])
			}
			return out
		}},
	}
	for _, tt := range tests {
		// Crash after 0, 2 and 5 flushed records, each with a torn record
		// written after the flush.
		for _, cut := range []int{0, 2, 5} {
			t.Run(string(tt.format)+"/"+string(rune('0'+cut)), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "out."+string(tt.format))
				w, err := Create(path, tt.format, nil, Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range urls[:cut] {
					if err := w.Write(rec(u)); err != nil {
						t.Fatal(err)
					}
				}
				if cut > 0 {
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
				}
				pos := w.Pos()
				if pos.Records != cut {
					t.Fatalf("Pos().Records = %d, want %d", pos.Records, cut)
				}
				// The crash: a record half written, and no Close.
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(`{"url":"torn","li`)
				f.Close()

				w, err = Resume(path, tt.format, Options{}, pos)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range urls[cut:] {
					if err := w.Write(rec(u)); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := tt.read(t, data); strings.Join(got, ",") != strings.Join(urls, ",") {
					t.Errorf("records %q, want %q\n%s", got, urls, data)
				}
			})
		}
	}
}

func TestResumeRefusesAShorterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(path, JSONL, Options{}, Pos{Offset: 100, Records: 5}); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("Resume past the end: %v, want an error saying the file changed", err)
	}
}
