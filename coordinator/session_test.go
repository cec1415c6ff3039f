package coordinator

import (
	"testing"

	"github.com/scrape-cluster/scrape/scrape"
)

func TestSessionJar(t *testing.T) {
	j := newSessionJar()
	task := scrape.Task{ID: 1, URL: "http://www.shop.example/login"}
	j.store(task, []scrape.SetCookie{
		{URL: "http://www.shop.example/login", Header: "sid=1; Path=/"},
		// A redirect through another host of the same site counts.
		{URL: "http://auth.shop.example/sso", Header: "sso=2; Domain=shop.example; Path=/"},
		{URL: "http://www.shop.example/login", Header: "cart=3; Path=/cart"},
		// A worker may not plant cookies for a site it was not sent to.
		{URL: "http://bank.example/", Header: "evil=1"},
		{URL: "http://www.shop.example/", Header: "gone=1; Max-Age=0"},
		{URL: "ftp://www.shop.example/", Header: "ftp=1"},
		{URL: "http://www.shop.example/", Header: "not a cookie"},
	})
	tests := []struct{ url, want string }{
		{"http://www.shop.example/members/1", "sid=1; sso=2"},
		{"http://www.shop.example/cart/x", "cart=3; sid=1; sso=2"},
		{"http://other.shop.example/", "sso=2"},
		{"http://bank.example/", ""},
		{"not a url\x7f", ""},
	}
	for _, tt := range tests {
		if got := j.header(tt.url); got != tt.want {
			t.Errorf("header(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}
