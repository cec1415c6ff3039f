// Package flagsource gives a command's flags values from outside its
// command line: environment variables named after the flags, and a config
// file of "name = value" lines. The command line wins over both, and the
// environment over the file, so a file can hold a cluster's usual settings,
// a shell or a CI job can adjust them, and one run can still differ.
//
// Both only set flags that are not set yet, through the flag's own Set, so
// every value is checked as it would be on the command line, and a flag set
// this way counts as given (pflag's Changed) to whatever reads the flags
// next.
package flagsource

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// EnvName is the variable that stands for the flag name under prefix:
// prefix "SCRAPE_" and "per-slot" give SCRAPE_PER_SLOT.
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// repeatable reports whether each Set of fl adds a value rather than
// replacing it.
func repeatable(fl *pflag.Flag) bool {
	_, ok := fl.Value.(pflag.SliceValue)
	return ok
}

// FromEnv sets each flag of f not set yet, and not skipped, from its
// variable (EnvName), if that is set and not empty. A repeatable flag takes
// one value per line of its variable, since its values may hold commas
// (headers, cookies). It returns the variables used; lookup is
// os.LookupEnv but in tests.
func FromEnv(f *pflag.FlagSet, prefix string, lookup func(string) (string, bool), skip func(*pflag.Flag) bool) ([]string, error) {
	var used []string
	var errs []error
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || (skip != nil && skip(fl)) {
			return
		}
		name := EnvName(prefix, fl.Name)
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		values := []string{v}
		if repeatable(fl) {
			values = strings.Split(strings.TrimRight(v, "\n"), "\n")
		}
		for _, v := range values {
			if err := f.Set(fl.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return
			}
		}
		used = append(used, name)
	})
	return used, errors.Join(errs...)
}

// Setting is one line of a config file: the flag it names and its value.
type Setting struct {
	Line  int
	Name  string
	Value string
	// Bare says the line named the flag alone, as "same-host": on, for a
	// switch.
	Bare bool
}

// ParseFile reads a config file: one flag a line, as "name = value",
// "name value" or a bare "name" (a switch turned on); the name may keep its
// "--". Blank lines and lines starting with # are skipped. A value in double
// quotes is read as a Go string, for one that begins or ends with spaces or
// holds a # of its own. A repeatable flag takes one line per value. file
// names the file in errors, which give its line.
func ParseFile(r io.Reader, file string) ([]Setting, error) {
	var out []Setting
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		s.Line = n
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}

func parseLine(line string) (Setting, error) {
	line = strings.TrimPrefix(line, "--")
	end := strings.IndexAny(line, " \t=")
	if end < 0 {
		end = len(line)
	}
	s := Setting{Name: line[:end]}
	if s.Name == "" || strings.HasPrefix(s.Name, "-") {
		return s, fmt.Errorf("%q names no flag (write name = value)", line)
	}
	rest := strings.TrimSpace(line[end:])
	if rest == "" {
		s.Bare = true
		return s, nil
	}
	if v, ok := strings.CutPrefix(rest, "="); ok {
		rest = strings.TrimSpace(v)
	}
	if strings.HasPrefix(rest, `"`) {
		v, err := strconv.Unquote(rest)
		if err != nil {
			return s, fmt.Errorf("%s: the value %s is not a complete quoted string", s.Name, rest)
		}
		rest = v
	}
	s.Value = rest
	return s, nil
}

// Apply sets the flags of f that settings name, but those set already
// (from the command line or the environment): the set is taken before the
// first setting, so the file's own lines for a repeatable flag all apply.
// A name f does not have, or that skip refuses, is an error naming the
// line. file names the file in errors.
func Apply(f *pflag.FlagSet, settings []Setting, file string, skip func(*pflag.Flag) bool) error {
	given := map[string]bool{}
	f.Visit(func(fl *pflag.Flag) { given[fl.Name] = true })
	for _, s := range settings {
		fl := f.Lookup(s.Name)
		if fl == nil || (skip != nil && skip(fl)) {
			return fmt.Errorf("%s:%d: no flag --%s here", file, s.Line, s.Name)
		}
		if given[fl.Name] {
			continue
		}
		v := s.Value
		if s.Bare {
			if fl.NoOptDefVal == "" {
				return fmt.Errorf("%s:%d: --%s needs a value", file, s.Line, s.Name)
			}
			v = fl.NoOptDefVal
		}
		if err := f.Set(fl.Name, v); err != nil {
			return fmt.Errorf("%s:%d: --%s: %w", file, s.Line, s.Name, err)
		}
	}
	return nil
}
