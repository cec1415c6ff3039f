// Package testbrowser is the tests' way to the node's Chromium.
package testbrowser

import (
	"os"
	"testing"

	"github.com/scrape-cluster/scrape/render"
)

// RequireBrowser returns the node's Chromium, or skips the test without
// one; under SCRAPE_REQUIRE_NETNS=1 (CI) a missing browser fails it.
func RequireBrowser(tb testing.TB) string {
	tb.Helper()
	path, err := render.Find("")
	if err != nil {
		if os.Getenv("SCRAPE_REQUIRE_NETNS") == "1" {
			tb.Fatalf("SCRAPE_REQUIRE_NETNS=1 and %v", err)
		}
		tb.Skipf("rendering tests need Chromium: %v", err)
	}
	return path
}
