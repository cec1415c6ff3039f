package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/queue"
)

// natsAuthFlags say how to log in to a NATS given with --nats.
var natsAuthFlags = []string{"creds", "nkey", "nats-user", "nats-password-file", "nats-token-file", "tls-ca"}

// bindNATS binds how scrape run and scrape worker reach an existing NATS,
// with the options NATS's own tools use. Secrets are read from files, never
// taken as flag values, which ps would show.
func bindNATS(f *pflag.FlagSet, servers *[]string, files *queue.AuthFiles, use string) {
	f.Var(commaList(servers), "nats", use)
	f.StringVar(&files.Creds, "creds", "", "NATS credentials `file` (user JWT and seed)")
	f.StringVar(&files.NKey, "nkey", "", "NATS NKey seed `file`")
	f.StringVar(&files.User, "nats-user", "", "NATS user `name` (password from --nats-password-file)")
	f.StringVar(&files.PasswordFile, "nats-password-file", "", "`file` holding the NATS user's password")
	f.StringVar(&files.TokenFile, "nats-token-file", "", "`file` holding a NATS token")
	f.StringVar(&files.CA, "tls-ca", "", "PEM `file` of the CA that signs the NATS server's certificate")
}

// checkNATS refuses NATS flags that cannot work, before any file is read:
// --nats naming no server (it would quietly mean no NATS at all), login
// flags without --nats, which nothing would read, and a password without its
// user. why ends the message for a flag that needs --nats.
func checkNATS(f *pflag.FlagSet, servers []string, files queue.AuthFiles, why string) error {
	if f.Changed("nats") && len(servers) == 0 {
		return errors.New("--nats names no server")
	}
	if len(servers) == 0 {
		if err := needs(f, natsAuthFlags, why); err != nil {
			return err
		}
	}
	if files.PasswordFile != "" && files.User == "" {
		return errors.New("--nats-password-file needs --nats-user")
	}
	return nil
}

// needs refuses the first of names that was given, saying why it cannot be.
func needs(f *pflag.FlagSet, names []string, why string) error {
	for _, name := range names {
		if f.Changed(name) {
			return fmt.Errorf("--%s %s", name, why)
		}
	}
	return nil
}
