package output

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatFor(t *testing.T) {
	tests := []struct {
		path, override string
		want           Format
		err            bool
	}{
		{"out.json", "", JSON, false},
		{"OUT.JSON", "", JSON, false},
		{"out.jsonl", "", JSONL, false},
		{"out.ndjson", "", JSONL, false},
		{"-", "", JSONL, false},
		{"", "", JSONL, false},
		{"out.txt", "", JSONL, false},
		{"out.jsonl", "json", JSON, false},
		{"-", "JSON", JSON, false},
		{"out.json", "xml", "", true},
		{"out.csv", "", CSV, false},
		{"OUT.CSV", "", CSV, false},
		{"out.json", "csv", CSV, false},
		{"-", "CSV", CSV, false},
		{"out.csv", "jsonl", JSONL, false},
	}
	for _, tt := range tests {
		got, err := FormatFor(tt.path, tt.override)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("FormatFor(%q, %q) = %q, %v; want %q, err %v", tt.path, tt.override, got, err, tt.want, tt.err)
		}
	}
}

var recs = []string{`{"url":"a"}`, `{"url":"b"}`, `{"url":"c"}`}

// TestJSONArrayValidAtEveryFlush is what makes an interrupted or killed run
// leave a readable file: after each Flush the file on disk is a complete array.
func TestJSONArrayValidAtEveryFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	w, err := Create(path, JSON, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want int) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]string
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("after %d records the file is not a JSON array: %v\n%s", want, err, data)
		}
		if len(got) != want {
			t.Fatalf("file holds %d records, want %d", len(got), want)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	check(0)
	for i, r := range recs {
		if err := w.Write([]byte(r)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		check(i + 1)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(len(recs))
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWritersOutput(t *testing.T) {
	tests := []struct {
		f    Format
		n    int
		want string
	}{
		{JSONL, 3, "{\"url\":\"a\"}\n{\"url\":\"b\"}\n{\"url\":\"c\"}\n"},
		{JSONL, 0, ""},
		{JSON, 2, "[\n{\"url\":\"a\"},\n{\"url\":\"b\"}\n]\n"},
		{JSON, 0, "[\n\n]\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		w, err := Create(Stdout, tt.f, &buf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[:tt.n] {
			w.Write([]byte(r))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s with %d records:\n%q\nwant\n%q", tt.f, tt.n, buf.String(), tt.want)
		}
		if tt.f == JSON {
			var v []any
			if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
				t.Errorf("%s output is not JSON: %v", tt.f, err)
			}
		}
	}
}

func TestCreateFailsOnUnwritablePath(t *testing.T) {
	_, err := Create(filepath.Join(t.TempDir(), "missing", "out.json"), JSON, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "create output") {
		t.Errorf("error %v", err)
	}
}
