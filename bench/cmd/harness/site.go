package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// siteProc is a running benchsite.
type siteProc struct {
	URL  string   // the first host's base URL
	URLs []string // every host's, in order
	cmd  *exec.Cmd
}

// startSite starts a benchsite of pages pages on 127.0.0.1, or with hosts > 0
// on that many loopback addresses (127.0.0.2 on), each serving the pages.
func startSite(bin string, pages int, latency time.Duration, hosts int) (*siteProc, error) {
	cmd := exec.Command(bin, "-pages", strconv.Itoa(pages), "-latency", latency.String(), "-addr", "127.0.0.1:0", "-hosts", strconv.Itoa(hosts))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case l := <-line:
		urls := strings.Fields(l)
		if len(urls) != max(1, hosts) || !strings.HasPrefix(urls[0], "http://127.0.0.") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("benchsite printed %q", l)
		}
		return &siteProc{URL: urls[0], URLs: urls, cmd: cmd}, nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("benchsite printed no URL in 10s")
	}
}

func (s *siteProc) pid() int { return s.cmd.Process.Pid }

// stop ends the site with SIGTERM, as an operator would.
func (s *siteProc) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}
