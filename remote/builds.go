package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Build is one scrape binary that --push can send.
type Build struct {
	Path     string
	Platform Platform
	Hash     string // SHA-256, hex
	Size     int64
}

// Tag names the build's directory in a node's push cache: the first 16
// hex digits of its hash, so identical copies are never sent twice and
// different builds never overwrite each other.
func (b *Build) Tag() string { return b.Hash[:16] }

// BuildSet is the binaries --push can send: this program for nodes like
// this machine, and the per-platform builds in Dir (scrape-linux-arm64,
// scrape-windows-amd64.exe, ...) for the others.
type BuildSet struct {
	Own string // this program
	Dir string // where the per-platform builds are

	once   sync.Once
	own    *Build
	byName map[string]*Build
	err    error
}

// MissingBuildError is a node whose platform has no build in the set.
type MissingBuildError struct {
	Platform Platform
	Path     string // the file that would have been sent
}

func (e *MissingBuildError) Error() string {
	return fmt.Sprintf("the node is %s and there is no %s: build the set into that directory with "+
		"scripts/build-all %s (from scrape's source tree), or give --push-dir a directory that has it",
		e.Platform, e.Path, filepath.Dir(e.Path))
}

// load hashes this program and every build in Dir, once.
func (s *BuildSet) load() error {
	s.once.Do(func() {
		if s.own, s.err = hashFile(s.Own, Own()); s.err != nil {
			s.err = fmt.Errorf("read own binary: %w", s.err)
			return
		}
		s.byName = map[string]*Build{}
		if s.Dir == "" {
			return
		}
		for _, p := range Builds {
			path := filepath.Join(s.Dir, p.BuildName())
			b, err := hashFile(path, p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				s.err = fmt.Errorf("read build: %w", err)
				return
			}
			s.byName[p.BuildName()] = b
		}
	})
	return s.err
}

func hashFile(path string, p Platform) (*Build, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &Build{Path: path, Platform: p, Hash: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// Tags are the cache tags of every build in the set, for the probe.
func (s *BuildSet) Tags() ([]string, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	tags := []string{s.own.Tag()}
	for _, p := range Builds {
		if b := s.byName[p.BuildName()]; b != nil {
			tags = append(tags, b.Tag())
		}
	}
	return tags, nil
}

// For is the build a node of platform p gets: this program on a node like
// this machine, else the build for p in Dir (for a 32-bit ARM node, one of
// an older ARM version will do). A missing build is a *MissingBuildError.
func (s *BuildSet) For(p Platform) (*Build, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	if p == Own() {
		return s.own, nil
	}
	want := Platform{OS: p.OS, Arch: p.Arch, ARM: p.ARM}
	for _, b := range Builds {
		if c := s.byName[b.BuildName()]; c != nil && b == want {
			return c, nil
		}
	}
	for _, b := range Builds {
		if c := s.byName[b.BuildName()]; c != nil && p.Runs(b) {
			return c, nil
		}
	}
	if p.Runs(Own()) {
		return s.own, nil
	}
	dir := s.Dir
	if dir == "" {
		dir = filepath.Dir(s.Own)
	}
	return nil, &MissingBuildError{Platform: p, Path: filepath.Join(dir, p.BuildName())}
}
