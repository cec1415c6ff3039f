package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

// check is how a tool's output matched its input.
type check struct {
	Records int // lines of output
	Unique  int // distinct input URLs answered
	OK      int // records without error, with a title and every link
	Foreign int // records for URLs not in the input
	Dups    int // second records for one URL
}

// pass reports whether every URL got exactly one record and every record is
// a complete page.
func (c check) pass(want int) bool {
	return c.Records == want && c.Unique == want && c.OK == want && c.Foreign == 0 && c.Dups == 0
}

func (c check) String() string {
	s := fmt.Sprintf("%d/%d ok", c.OK, c.Records)
	if c.Dups > 0 || c.Foreign > 0 {
		s += fmt.Sprintf(" (%d dup, %d foreign)", c.Dups, c.Foreign)
	}
	return s
}

// urlOf is the i-th URL of a urls file over the hosts bases, each serving
// pages pages: the hosts in turn, as a list of many sites would mix them, and
// on each host its pages in order, again from the first after the last.
func urlOf(bases []string, pages, i int) string {
	return bases[i%len(bases)] + "/page/" + strconv.Itoa((i/len(bases))%pages)
}

// urlsFile writes n URLs of the sites bases (urlOf).
func urlsFile(path string, bases []string, n, pages int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		w.WriteString(urlOf(bases, pages, i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// verify reads a JSON-lines output made from the n distinct URLs urlsFile
// wrote and checks one complete record per URL. wantLinks is the links each
// page carries.
func verify(path string, bases []string, n, pages, wantLinks int) (check, error) {
	var c check
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	want := make(map[string]bool, n)
	for i := range n {
		want[urlOf(bases, pages, i)] = false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r struct {
			URL   string          `json:"url"`
			Title string          `json:"title"`
			Links []string        `json:"links"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return c, fmt.Errorf("%s: record %d: %w", path, c.Records+1, err)
		}
		c.Records++
		seen, ok := want[r.URL]
		switch {
		case !ok:
			c.Foreign++
			continue
		case seen:
			c.Dups++
			continue
		}
		want[r.URL] = true
		c.Unique++
		if r.Error == nil && r.Title != "" && len(r.Links) == wantLinks {
			c.OK++
		}
	}
	return c, sc.Err()
}

// countLines counts the lines of path.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		for _, b := range buf[:k] {
			if b == '\n' {
				n++
			}
		}
		if err != nil {
			return n, nil
		}
	}
}
