package testsite

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the cookie /login sets and /members/ asks for.
const SessionCookie = "session"

// memberDelay is how long a member page takes.
const memberDelay = 50 * time.Millisecond

// sessionValue is what /login sets it to.
const sessionValue = "let-me-in"

// login sets the session cookie and sends the client on to /members/,
// as a login form's answer does.
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sessionValue, Path: "/", HttpOnly: true})
	http.Redirect(w, r, "/members/", http.StatusFound)
}

// members serves /members/ (an index linking to /members/0 to
// /members/Pages-1) and its pages, to a client with the session cookie
// alone: to anyone else, 403.
func (s *Site) members(w http.ResponseWriter, r *http.Request, parts []string) {
	if c, err := r.Cookie(SessionCookie); err != nil || c.Value != sessionValue {
		http.Error(w, "log in first", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if at(parts, 1) == "" {
		var b strings.Builder
		b.WriteString("<!doctype html><title>Members</title><ul>")
		for n := range s.Pages {
			fmt.Fprintf(&b, `<li><a href="/members/%d">member page %d</a>`, n, n)
		}
		b.WriteString("</ul>")
		fmt.Fprint(w, b.String())
		return
	}
	n, err := strconv.Atoi(at(parts, 1))
	if err != nil || n < 0 || n >= s.Pages {
		http.NotFound(w, r)
		return
	}
	// A member page takes a moment, as a page built for its reader does:
	// long enough that a crawl of them spreads across a cluster's nodes.
	if !s.wait(r, memberDelay) {
		return
	}
	fmt.Fprintf(w, "<!doctype html><title>Member page %d</title><p>for members only", n)
}
