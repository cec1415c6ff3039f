package scrape

// Version is the release the binary was built from. It is a variable, not a
// constant, so that release builds can stamp it with
// -ldflags "-X github.com/scrape-cluster/scrape/scrape.Version=1.2.3".
var Version = "0.1.0-dev"

// DefaultUserAgent names the crawler and where to read about it, so a site
// operator who sees it in their logs can find out who is fetching and why.
func DefaultUserAgent() string {
	return "scrape/" + Version + " (+https://github.com/scrape-cluster/scrape)"
}
