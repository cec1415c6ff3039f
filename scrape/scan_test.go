package scrape

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// treePage is what the tree builder makes of doc: the reference scanPage must
// match whenever it accepts a page.
func treePage(t testing.TB, base string, doc []byte) Page {
	t.Helper()
	p, err := extractor{}.extractTree(mustParseURL(t, base), doc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanMatchesTree(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		scan bool // whether scanPage reads it itself
	}{
		{"plain", `<title>T</title><meta name=description content=D><h1>One</h1><a href=/a>a</a>`, true},
		{"inline in heading", `<h2>Nested <b>bold <i>text</i></b> <a href="/x">link</a></h2>`, true},
		{"blocks in heading", `<h1><div>Foo</div><div>Bar</div></h1><h3>a<br>b</h3>`, true},
		{"script in heading", `<h1>With <script>var x = "<h2>";</script>script<style>h1{}</style></h1>`, true},
		{"heading closes heading", `<h1>One<h2>Two</h2><h3>Three</h1>after`, true},
		{"h4 holds h2", `<h4>four<h2>two</h2></h4>`, true},
		{"unclosed heading", `<h2>runs <p>to the end <a href=/e>e</a>`, true},
		{"noscript markup", `<noscript><a href=/ns>x</a><h1>no js</h1></noscript><head><noscript><meta name=description content=nd></noscript>`, true},
		{"base and og", `<meta property="og:title" content=" OG  T "><meta name=og:description content=od><base href="/dir/"><a href=rel>r</a>`, true},
		{"title in body", `<body><h1>x</h1><title>Late &amp; title</title><title>second</title>`, true},
		{"entities and CR", "<title>a&lt;b\r\nc</title><h1>x&nbsp;y</h1><a href=\"/q?a=1&amp;b=2\">q</a>", true},
		{"formatting reconstructed", `<p><b>bold</p><h1>in h1</h1><p><a href=/r>x</p><h2>y</h2>`, true},
		{"empty title", `<title></title><meta property=og:title content=og>`, true},
		{"duplicate attributes", `<meta name=description content=first content=second><a href=/1 href=/2>`, true},

		{"unclosed title", `<title>all the rest <h1>x</h1>`, false},
		{"svg", `<svg><title>tooltip</title><a href=/svg>s</a></svg><title>T</title>`, false},
		{"template", `<template><a href=/t>t</a></template><a href=/u>u</a>`, false},
		{"table", `<table><tr><td><a href=/in>x</td></tr><a href=/out>y</a>`, false},
		{"misnested in heading", `<h1><b>one<i>two</b>three</i></h1>`, false},
		{"div closes heading", `<div><h1>x</div>y</h1>`, false},
		{"a in a heading", `<a href=/1>x<h1><a href=/2>y</a></h1>`, false},
		{"heading with open span", `<h1><span>One<h2>Two</h2>`, false},
		{"textarea in heading", "<h1>a<textarea>\nb</textarea></h1>", false},
		{"nul", "<h1>a\x00b</h1>", false},
		{"p closed in heading", `<h1><p>a<div>b</div></h1>`, false},
	}
	const base = "https://example.com/dir/page.html"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := scanPage(mustParseURL(t, base), []byte(tt.doc))
			if ok != tt.scan {
				t.Fatalf("scanPage accepted = %v, want %v", ok, tt.scan)
			}
			want := treePage(t, base, []byte(tt.doc))
			if ok && !reflect.DeepEqual(got, want) {
				t.Errorf("scan\n got %#v\nwant %#v (tree)", got, want)
			}
			// Extract itself always answers as the tree does.
			ex, err := Extract(mustParseURL(t, base), strings.NewReader(tt.doc), ExtractOptions{})
			if err != nil || !reflect.DeepEqual(ex, want) {
				t.Errorf("Extract\n got %#v, %v\nwant %#v", ex, err, want)
			}
		})
	}
}

// TestScanFixtures runs every fixture through both paths; the benchmark page
// must take the fast one.
func TestScanFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		doc, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := scanPage(mustParseURL(t, testPageURL), doc)
		if filepath.Base(file) == "bench.html" && !ok {
			t.Errorf("%s: scanPage declined the benchmark page", file)
		}
		if !ok {
			continue
		}
		if want := treePage(t, testPageURL, doc); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: scan\n got %#v\nwant %#v (tree)", file, got, want)
		}
	}
}

// FuzzScanMatchesTree holds the fast path to the tree builder: whenever
// scanPage accepts a document, it must say what the tree says.
//
//	go test ./scrape -run '^$' -fuzz FuzzScanMatchesTree
func FuzzScanMatchesTree(f *testing.F) {
	files, err := filepath.Glob("testdata/*.html")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`<h1>a<b>b</b><div>c</div></h1><h2>d<h3>e`,
		`<p><a href=/x>y</p><h1>z<a href=/w>w</a></h1>`,
		`<h1><li>a<li>b</h1><dl><dt>x<dd>y</dl>`,
		`<title>t</title><title>u</title><meta content=c name=description>`,
		`<h2><noscript><a href=/n>n</a></noscript><pre>` + "\n" + `p</pre></h2>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, ok := scanPage(mustParseURL(t, testPageURL), doc)
		if !ok {
			return
		}
		if want := treePage(t, testPageURL, doc); !reflect.DeepEqual(got, want) {
			t.Errorf("scan\n got %#v\nwant %#v (tree)", got, want)
		}
	})
}

// FuzzLinkResolver holds linkResolver's string joining to what parsing and
// resolving the URL gives.
func FuzzLinkResolver(f *testing.F) {
	for _, c := range [][2]string{
		{"http://h/page/5", "/page/6"}, {"http://h/page/5", "6"}, {"https://u:p@h:8080/a/b/", "c.html"},
		{"http://h/a/b", "../c"}, {"http://h/a/b", "./c"}, {"http://h", "x"}, {"http://h/a", "//other/x"},
		{"http://h/a", "a//b"}, {"http://[::1]:80/x", "y/z"}, {"http://h/%7Ea/b", "c"}, {"http://h/a", "b."},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, rawBase, href string) {
		base, err := url.Parse(rawBase)
		if err != nil {
			return
		}
		got, gotOK := newLinkResolver(base).resolve(href)
		want, wantOK := resolveLink(base, href)
		if got != want || gotOK != wantOK {
			t.Errorf("base %q href %q: got %q %v, want %q %v", rawBase, href, got, gotOK, want, wantOK)
		}
	})
}
