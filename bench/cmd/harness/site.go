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
	URL string
	cmd *exec.Cmd
}

func startSite(bin string, pages int, latency time.Duration) (*siteProc, error) {
	cmd := exec.Command(bin, "-pages", strconv.Itoa(pages), "-latency", latency.String(), "-addr", "127.0.0.1:0")
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
	case u := <-line:
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("benchsite printed %q", u)
		}
		return &siteProc{URL: u, cmd: cmd}, nil
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
