package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/scrape-cluster/scrape/scrape"
)

// byteSize is a flag value written as people write sizes: 10MiB, 512KB, 2048.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

func (s *byteSize) Set(v string) error {
	t := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 || n*float64(mult) > 1<<50 {
		return fmt.Errorf("%q is not a size (try 10MiB)", v)
	}
	*s = byteSize(n * float64(mult))
	return nil
}

func (s *byteSize) String() string {
	n := int64(*s)
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

func (*byteSize) Type() string { return "size" }

// redirects is --max-redirects, bound to scrape.Config.MaxRedirects: on the
// command line 0 follows none, where the Config's 0 means its default and a
// negative number none.
type redirects int

func (r *redirects) Set(v string) error {
	n, err := strconv.ParseInt(v, 0, 0)
	if err != nil {
		return err
	}
	if n < 0 {
		return errors.New("must be 0 or more")
	}
	*r = redirects(n)
	if n == 0 {
		*r = -1
	}
	return nil
}

func (r *redirects) String() string { return strconv.Itoa(max(int(*r), 0)) }

func (*redirects) Type() string { return "int" }

// words is a flag written as one string and kept as what it splits into:
// --ssh "ssh -F cluster.conf" is a command and its arguments, --nats
// "nats://a,nats://b" a list of servers. It shows as a string in --help.
type words struct {
	p     *[]string
	sep   string // what String joins with
	split func(string) []string
}

func (w words) Set(v string) error { *w.p = w.split(v); return nil }

func (w words) String() string { return strings.Join(*w.p, w.sep) }

func (words) Type() string { return "string" }

// fields binds a command line with its options, split at spaces.
func fields(p *[]string) words { return words{p, " ", strings.Fields} }

// commaList binds a comma-separated list, as NATS tools take server URLs,
// ignoring spaces and empty items.
func commaList(p *[]string) words {
	return words{p, ",", func(v string) []string {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}}
}

// allowPrivate is --allow-private: alone, every private range but link-local;
// with CIDRs (--allow-private=10.0.0.0/8,fd00::/8), just those.
type allowPrivate struct{ cfg *scrape.Config }

func (a allowPrivate) Set(v string) error {
	if v == "all" {
		a.cfg.AllowPrivateAll = true
		return nil
	}
	p, err := scrape.ParseAllowPrivate(v)
	if err != nil {
		return err
	}
	a.cfg.AllowPrivate = append(a.cfg.AllowPrivate, p...)
	return nil
}

func (a allowPrivate) String() string {
	if a.cfg == nil {
		return ""
	}
	var parts []string
	if a.cfg.AllowPrivateAll {
		parts = append(parts, "all")
	}
	for _, p := range a.cfg.AllowPrivate {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ",")
}

func (allowPrivate) Type() string { return "CIDRs" }
