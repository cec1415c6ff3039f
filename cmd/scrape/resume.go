package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/spf13/pflag"
)

// flagArgs gives fl back as arguments that set it to its value.
func flagArgs(fl *pflag.Flag) []string {
	s, ok := fl.Value.(pflag.SliceValue)
	if !ok {
		return []string{"--" + fl.Name + "=" + fl.Value.String()}
	}
	var args []string
	for _, v := range s.GetSlice() {
		args = append(args, "--"+fl.Name+"="+v)
	}
	return args
}

// resumed is the run o resumes: the command line kept with it (saved),
// shown as o's own flags say.
func (o *runOptions) resumed(saved []byte) (*runOptions, error) {
	dir := o.cfg.StateDir
	var args []string
	if err := json.Unmarshal(saved, &args); err != nil {
		// Before these were a command line, they were a JSON object.
		return nil, fmt.Errorf("read the flags of the run in %s (begun by an older scrape?): %w", dir, err)
	}
	r := &runOptions{stdin: o.stdin}
	r.cfg.Stdout, r.cfg.Stderr = o.cfg.Stdout, o.cfg.Stderr
	f := pflag.NewFlagSet("run", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	r.bind(f)
	err := f.Parse(append(slices.Clone(o.shown), args...))
	if err == nil {
		err = r.complete(f, f.Args())
	}
	if err != nil {
		// Not a usage error: the command line given now is fine.
		return nil, fmt.Errorf("the flags of the run in %s: %v", dir, err)
	}
	r.cfg.Resume, r.cfg.StateDir = true, dir
	return r, nil
}

// absPaths makes the run's paths absolute, so that a resume started from
// another directory finds the same files.
func (o *runOptions) absPaths() error {
	a, w, c := &o.auth, &o.workerAuth, &o.cfg
	for _, p := range []*string{&o.machinefile, &c.InputPath, &c.Output, &c.Warc, &c.StateDir, &c.PushDir, &a.Creds, &a.NKey, &a.PasswordFile, &a.TokenFile, &a.CA,
		&w.Creds, &w.NKey, &w.PasswordFile, &w.TokenFile, &o.req.cookiesFile, &c.Since} {
		if *p == "" || *p == "-" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}
