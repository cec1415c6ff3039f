package render

import (
	"errors"
	"fmt"
	"os/exec"
)

// Names is where Find looks on PATH, in order: Debian's package, other
// distributions', Google's.
var Names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// ErrNoBrowser is a node without a browser to render with.
var ErrNoBrowser = errors.New("no Chromium found (looked for chromium, chromium-browser, google-chrome on PATH); install it (apt-get install chromium) or name it with --browser")

// Find returns the browser to render with: path if given (which must be an
// executable), else the first of Names on PATH.
func Find(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("browser %s: %w", path, err)
		}
		return p, nil
	}
	for _, name := range Names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}
