//go:build !unix

package coordinator

// private has no Unix permission bits to check here; the state directory's
// ACLs are the user's to set.
func private(path string) error { return nil }
