package scrape

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// CookieFileError is a line of a cookies.txt that is no cookie. Text is
// the line without its value: the error may be printed.
type CookieFileError struct {
	File string
	Line int
	Err  error
}

func (e *CookieFileError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *CookieFileError) Unwrap() error { return e.Err }

// ReadCookiesFile reads a cookies.txt (--cookies).
func ReadCookiesFile(path string) ([]Cookie, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cookies: %w", err)
	}
	defer f.Close()
	return ParseCookiesFile(f, path)
}

// ParseCookiesFile reads the Netscape cookies.txt format that curl, wget
// and browsers' export extensions write: one cookie a line, seven fields
// separated by tabs (domain, include subdomains, path, secure, expiry in
// Unix seconds with 0 for a session cookie, name, value). Lines starting
// with # are comments, except "#HttpOnly_", which curl puts before the
// domain of an HttpOnly cookie. name is the file's name, for errors.
// Cookies already expired are kept: a fetch leaves them out itself.
func ParseCookiesFile(r io.Reader, name string) ([]Cookie, error) {
	var out []Cookie
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if rest, ok := strings.CutPrefix(line, "#HttpOnly_"); ok {
			line = rest
		} else if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := parseCookieLine(line)
		if err != nil {
			return nil, &CookieFileError{File: name, Line: n, Err: err}
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

func parseCookieLine(line string) (Cookie, error) {
	f := strings.Split(line, "\t")
	if len(f) == 6 {
		// Some exporters leave an empty value's field out altogether.
		f = append(f, "")
	}
	if len(f) != 7 {
		return Cookie{}, fmt.Errorf("%d tab-separated fields, want 7 (domain, subdomains, path, secure, expiry, name, value)", len(f))
	}
	domain := strings.ToLower(strings.TrimSpace(f[0]))
	sub, err := cookieBool(f[1], "include-subdomains")
	if err != nil {
		return Cookie{}, err
	}
	if d, ok := strings.CutPrefix(domain, "."); ok {
		// A leading dot is the older way to say the same.
		domain, sub = d, true
	}
	if domain == "" || strings.ContainsAny(domain, " /:") {
		return Cookie{}, fmt.Errorf("domain %q is no host name", f[0])
	}
	secure, err := cookieBool(f[3], "secure")
	if err != nil {
		return Cookie{}, err
	}
	exp, err := strconv.ParseInt(strings.TrimSpace(f[4]), 10, 64)
	if err != nil || exp < 0 {
		return Cookie{}, fmt.Errorf("expiry %q is not Unix seconds", f[4])
	}
	c := Cookie{Name: f[5], Value: f[6], Domain: domain, Subdomains: sub, Path: f[2], Secure: secure}
	if exp > 0 {
		c.Expires = time.Unix(min(exp, 1<<40), 0).UTC()
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		return Cookie{}, fmt.Errorf("path %q does not start with /", f[2])
	}
	if c.Name == "" {
		return Cookie{}, fmt.Errorf("cookie without a name")
	}
	if err := c.valid(); err != nil {
		return Cookie{}, fmt.Errorf("cookie %s: %w", c.Name, err)
	}
	return c, nil
}

func cookieBool(s, field string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TRUE":
		return true, nil
	case "FALSE":
		return false, nil
	}
	return false, fmt.Errorf("%s field %q: want TRUE or FALSE", field, s)
}
