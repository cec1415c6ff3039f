package main

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// spider is the Scrapy spider the harness runs (spider.py: Scrapy's
// defaults, the fields the other tools extract).
//
//go:embed spider.py
var spider []byte

// spreadOptions shape the out-of-the-box workload.
type spreadOptions struct {
	Hosts    int // loopback hosts
	PerHost  int // pages per host
	InFlight int // the baseline's and Colly's pages in flight
}

// setUpScrapy writes the spider into bin when the scrapy command is
// installed, and returns its path, or "" and why not.
func setUpScrapy(bin string) (string, string) {
	if _, err := exec.LookPath("scrapy"); err != nil {
		return "", "no scrapy command (Debian: apt-get install python3-scrapy)"
	}
	path := filepath.Join(bin, "spider.py")
	if err := os.WriteFile(path, spider, 0o644); err != nil {
		return "", err.Error()
	}
	return path, ""
}

func scrapyArgv(spider, urls, out string) []string {
	return []string{"scrapy", "runspider", spider, "-a", "urls=" + urls, "-O", out + ":jsonlines"}
}

// spreadWorkload is the out-of-the-box case of issue #15: a latency-bound
// site over many hosts, fetched by scrape with no flag at all and Scrapy
// with its defaults, against the baseline and Colly at a fixed number of
// pages in flight (Scrapy's default, 16).
func spreadWorkload(o options, bins binaries) workload {
	sp := o.Spread
	wl := workload{
		Name:     "out of the box",
		Key:      "spread",
		Pages:    sp.Hosts * sp.PerHost,
		Latency:  o.Latency,
		InFlight: sp.InFlight,
		Hosts:    sp.Hosts,
		PerHost:  sp.PerHost,
		Defaults: true,
		Tools:    slices.Clone(o.Tools),
	}
	// The revision before would fetch a page or two at a time here: minutes
	// of a run that says nothing new about it.
	wl.Tools = slices.DeleteFunc(wl.Tools, func(t string) bool { return t == "scrape-base" })
	if slices.Contains(wl.Tools, "scrapy") && bins.Spider == "" {
		logf("out of the box: Scrapy skipped: %s", bins.NoScrapy)
		wl.Tools = slices.DeleteFunc(wl.Tools, func(t string) bool { return t == "scrapy" })
		wl.Note = "Scrapy skipped: " + bins.NoScrapy + "."
	}
	return wl
}
