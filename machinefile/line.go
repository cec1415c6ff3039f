package machinefile

import (
	"fmt"
	"net/url"
	"strings"
)

// parseLine reads the host on one line; ok is false when the line holds only
// blanks and a comment. word is the line's host word, for errors found once
// the host is merged with its repeats. A returned error lacks File and Line,
// which only the caller knows.
func parseLine(line string) (h Host, word string, ok bool, err *ParseError) {
	line, _, _ = strings.Cut(line, "#")
	words := strings.Fields(line)
	if len(words) == 0 {
		return Host{}, "", false, nil
	}
	p := lineParser{word: words[0]}
	if perr := p.hostWord(words[0]); perr != nil {
		return Host{}, "", false, perr
	}
	for _, w := range words[1:] {
		if perr := p.option(w); perr != nil {
			return Host{}, "", false, perr
		}
	}
	if p.host.Slots == 0 {
		p.host.Slots = 1
	}
	return p.host, words[0], true, nil
}

// lineParser gathers one line's host. It remembers which word set the slot
// count and the port, to name both words when a line sets one twice.
type lineParser struct {
	host      Host
	word      string // the host word, quoted in errors about it
	slotsFrom string
	portFrom  string
	maxSlots  string
}

func (p *lineParser) fail(err error, format string, args ...any) *ParseError {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
	}
	return &ParseError{Text: p.word, Err: err}
}

// hostWord reads the first word of a line: an optional GNU parallel "N/",
// then ":", an ssh:// URL or an MPICH host.
func (p *lineParser) hostWord(w string) *ParseError {
	if jobs, rest, ok := cutJobs(w); ok {
		n, ok := parseCount(jobs)
		if !ok {
			return p.fail(ErrSlots, "")
		}
		p.host.Slots, p.slotsFrom = n, jobs+"/"
		w = rest
	}
	const scheme = "ssh://"
	switch {
	case strings.Contains(w, "="):
		return p.fail(ErrHost, "a line starts with its host, and options follow it")
	case w == ":":
		p.host.Name = "localhost"
		return nil
	case len(w) >= len(scheme) && strings.EqualFold(w[:len(scheme)], scheme):
		return p.sshURL(w[len(scheme):])
	}
	return p.mpiHost(w)
}

// cutJobs splits GNU parallel's job count from the rest of the word. A sign
// counts as part of a number, so that "-1/node1" is reported as a bad count
// rather than as a strange host name.
func cutJobs(w string) (jobs, rest string, ok bool) {
	jobs, rest, ok = strings.Cut(w, "/")
	if !ok || jobs == "" || strings.Trim(jobs, "0123456789+-") != "" {
		return "", "", false
	}
	return jobs, rest, true
}

// mpiHost reads "[user@]host[:N]", with host a name, an IPv4 address, an
// IPv6 address in brackets or a bare IPv6 address.
func (p *lineParser) mpiHost(w string) *ParseError {
	hostport, err := p.user(w)
	if err != nil {
		return err
	}
	if strings.HasPrefix(hostport, "[") {
		addr, after, ok := strings.Cut(hostport[1:], "]")
		if !ok || !validIPv6(addr) {
			return p.fail(ErrHost, "brackets must hold an IPv6 address")
		}
		p.host.Name = addr
		if after == "" {
			return nil
		}
		count, ok := strings.CutPrefix(after, ":")
		if !ok {
			return p.fail(ErrHost, "")
		}
		return p.slotSuffix(count)
	}
	switch strings.Count(hostport, ":") {
	case 0:
		return p.name(hostport)
	case 1:
		name, count, _ := strings.Cut(hostport, ":")
		if err := p.name(name); err != nil {
			return err
		}
		return p.slotSuffix(count)
	}
	if validIPv6(hostport) {
		p.host.Name = hostport
		return nil
	}
	if name, _, _ := strings.Cut(hostport, ":"); strings.Count(hostport, ":") == 2 && validName(name) {
		return p.fail(ErrPort, "two colons; give the ssh port as port=N, the slot count as :N")
	}
	return p.fail(ErrHost, "not an IPv6 address; an IPv6 address with a slot count goes in brackets, [addr]:N")
}

// sshURL reads the rest of "ssh://[user@]host[:port]".
func (p *lineParser) sshURL(rest string) *ParseError {
	if strings.ContainsAny(rest, "/?") {
		return p.fail(ErrHost, "an ssh:// URL has no path or query")
	}
	hostport, err := p.user(rest)
	if err != nil {
		return err
	}
	var port string
	hasPort := false
	if strings.HasPrefix(hostport, "[") {
		addr, after, ok := strings.Cut(hostport[1:], "]")
		if !ok || !validIPv6(addr) {
			return p.fail(ErrHost, "brackets must hold an IPv6 address")
		}
		p.host.Name = addr
		if after != "" {
			if port, hasPort = strings.CutPrefix(after, ":"); !hasPort {
				return p.fail(ErrHost, "")
			}
		}
	} else {
		var name string
		name, port, hasPort = strings.Cut(hostport, ":")
		if strings.Contains(port, ":") && validIPv6(hostport) {
			return p.fail(ErrHost, "an IPv6 address in a URL goes in brackets, ssh://[addr]")
		}
		if err := p.name(name); err != nil {
			return err
		}
	}
	if !hasPort {
		return nil
	}
	n, ok := parsePort(port)
	if !ok && strings.Contains(port, ":") {
		return p.fail(ErrPort, "the number after a URL's colon is its port; give slots as N/ or slots=N")
	}
	if !ok {
		return p.fail(ErrPort, "")
	}
	p.host.Port, p.portFrom = n, p.word
	return nil
}

// user cuts and checks the "user@" in front of a host. Like ssh, it splits at
// the last '@'.
func (p *lineParser) user(w string) (hostport string, err *ParseError) {
	i := strings.LastIndexByte(w, '@')
	if i < 0 {
		return w, nil
	}
	if !validUser(w[:i]) {
		return "", p.fail(ErrUser, "")
	}
	p.host.User = w[:i]
	return w[i+1:], nil
}

func (p *lineParser) name(s string) *ParseError {
	if !validName(s) {
		return p.fail(ErrHost, "")
	}
	p.host.Name = s
	return nil
}

// slotSuffix reads the N of "host:N".
func (p *lineParser) slotSuffix(count string) *ParseError {
	n, ok := parseCount(count)
	if !ok {
		return p.fail(ErrSlots, "")
	}
	if p.slotsFrom != "" {
		return p.fail(ErrSlots, "already given by %q", p.slotsFrom)
	}
	p.host.Slots, p.slotsFrom = n, ":"+count
	return nil
}

// option reads a key=value word after the host. Errors quote the option word
// rather than the host.
func (p *lineParser) option(w string) *ParseError {
	p.word = w
	key, val, ok := strings.Cut(w, "=")
	if !ok {
		return p.fail(ErrOption, "one host per line, and options are key=value")
	}
	switch key {
	case "slots":
		n, ok := parseCount(val)
		if !ok {
			return p.fail(ErrSlots, "")
		}
		if p.slotsFrom != "" {
			return p.fail(ErrSlots, "already given by %q", p.slotsFrom)
		}
		p.host.Slots, p.slotsFrom = n, w
	case "max_slots":
		// Open MPI's cap on oversubscription; scrape never oversubscribes,
		// but a malformed value is still a mistake worth reporting.
		if _, ok := parseDecimal(val, MaxSlots); !ok {
			return p.fail(ErrSlots, "")
		}
		if p.maxSlots != "" {
			return p.fail(ErrOption, "already given by %q", p.maxSlots)
		}
		p.maxSlots = w
	case "port":
		n, ok := parsePort(val)
		if !ok {
			return p.fail(ErrPort, "")
		}
		if p.portFrom != "" {
			return p.fail(ErrPort, "already given by %q", p.portFrom)
		}
		p.host.Port, p.portFrom = n, w
	case "proxy":
		u, err := url.Parse(val)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" && u.Scheme != "socks5h") {
			// The value may hold a password: the error quotes the key alone.
			p.word = "proxy=…"
			return p.fail(ErrOption, "proxy=URL takes an http://, https:// or socks5:// URL with a host")
		}
		p.host.Proxies = append(p.host.Proxies, val)
	case "render":
		if val != RenderYes && val != RenderNo {
			return p.fail(ErrOption, "render= takes yes or no")
		}
		if p.host.Render != "" {
			return p.fail(ErrOption, "render= given twice")
		}
		p.host.Render = val
	default:
		return p.fail(ErrOption, "unknown key %q (known: slots, max_slots, port, proxy, render)", key)
	}
	return nil
}
