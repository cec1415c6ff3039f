package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/internal/flagsource"
)

// envPrefix begins the variables that stand for scrape run's flags:
// SCRAPE_PER_SLOT for --per-slot.
const envPrefix = "SCRAPE_"

// notFromOutside are flags only the command line may give: --resume runs a
// kept run with the flags it began with, and --config names the file.
func notFromOutside(fl *pflag.Flag) bool {
	return fl.Name == "resume" || fl.Name == "config" || fl.Name == "help"
}

// flagsFromOutside sets the flags of f the command line did not give from
// SCRAPE_<FLAG> variables, then from the NATS tools' variables (natsFromEnv,
// into o.fromEnv), then from the config file (--config, or SCRAPE_CONFIG).
// It returns the SCRAPE_ variables and the file that set flags, for -v to
// say.
func (o *runOptions) flagsFromOutside(f *pflag.FlagSet, lookup func(string) (string, bool)) ([]string, error) {
	used, err := flagsource.FromEnv(f, envPrefix, lookup, notFromOutside)
	if err != nil {
		return nil, err
	}
	getenv := func(k string) string { v, _ := lookup(k); return v }
	if o.fromEnv, err = natsFromEnv(f, getenv); err != nil {
		return nil, err
	}
	path := o.config
	if path == "" {
		path, _ = lookup(envPrefix + "CONFIG")
	}
	if path == "" {
		return used, nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer file.Close()
	settings, err := flagsource.ParseFile(file, path)
	if err != nil {
		return nil, err
	}
	if err := flagsource.Apply(f, settings, path, notFromOutside); err != nil {
		return nil, err
	}
	return append(used, path), nil
}
