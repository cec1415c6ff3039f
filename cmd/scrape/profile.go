package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// profileEnv names a directory into which every scrape process of a run (the
// coordinator and the workers it starts, which inherit the environment)
// writes a CPU profile and a heap profile, named after its command and pid:
//
//	SCRAPE_PROFILE_DIR=/tmp/prof scrape run urls.txt -o out.jsonl
//	go tool pprof -top /tmp/prof/run-1234.cpu.pprof
//
// It is for finding where the time goes; runs without it pay nothing.
const profileEnv = "SCRAPE_PROFILE_DIR"

// startProfile starts the CPU profile if profileEnv asks for one and returns
// what stops it and writes the heap profile.
func startProfile(command string, stderr io.Writer) (stop func()) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", command, os.Getpid()))
	f, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		fmt.Fprintf(stderr, "scrape: %s: %v\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "scrape: %s: %v\n", profileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if h, err := os.Create(base + ".heap.pprof"); err == nil {
			runtime.GC()
			_ = pprof.Lookup("allocs").WriteTo(h, 0)
			h.Close()
		}
	}
}
