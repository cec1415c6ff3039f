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

// workerAuthFlags say how the workers scrape run starts log in to the NATS
// given with --nats: a login of their own, never the coordinator's.
var workerAuthFlags = []string{"worker-creds", "worker-nkey", "worker-user", "worker-password-file", "worker-token-file"}

// bindWorkerAuth binds scrape run's logins for the workers it starts on an
// existing NATS, as bindNATS does the coordinator's: secrets from files only.
// The workers check the servers with --tls-ca, as the coordinator does.
func bindWorkerAuth(f *pflag.FlagSet, files *queue.AuthFiles) {
	f.StringVar(&files.Creds, "worker-creds", "", "NATS credentials `file` the workers the run starts log in with (--nats)")
	f.StringVar(&files.NKey, "worker-nkey", "", "NATS NKey seed `file` the workers the run starts log in with (--nats)")
	f.StringVar(&files.User, "worker-user", "", "NATS user `name` of the workers the run starts (--nats; password from --worker-password-file)")
	f.StringVar(&files.PasswordFile, "worker-password-file", "", "`file` holding the password of --worker-user")
	f.StringVar(&files.TokenFile, "worker-token-file", "", "`file` holding the NATS token the workers the run starts log in with (--nats)")
}

// checkWorkerAuth refuses worker logins without --nats, which nothing would
// read, and a password without its user.
func checkWorkerAuth(f *pflag.FlagSet, servers []string, files queue.AuthFiles) error {
	if len(servers) == 0 {
		if err := needs(f, workerAuthFlags, "is for the workers' login to the NATS given with --nats"); err != nil {
			return err
		}
	}
	if files.PasswordFile != "" && files.User == "" {
		return errors.New("--worker-password-file needs --worker-user")
	}
	return nil
}

// logsIn reports whether files name a login: with none, the client is
// anonymous (a NATS without authorization).
func logsIn(files queue.AuthFiles) bool {
	return files.Creds != "" || files.NKey != "" || files.User != "" || files.TokenFile != ""
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

// natsEnv are the environment variables of NATS's own tools (the nats CLI)
// that scrape honours where it takes --nats, each for the flag it stands
// for. A flag given wins over its variable. NATS_PASSWORD has no flag (a
// password is never a flag's value): it is read with the login (natsLogin).
var natsEnv = []struct{ name, flag string }{
	{"NATS_URL", "nats"},
	{"NATS_CREDS", "creds"},
	{"NATS_NKEY", "nkey"},
	{"NATS_USER", "nats-user"},
	{"NATS_CA", "tls-ca"},
}

// natsFromEnv sets the NATS flags not given from their variables, as if
// given, so that every check of the flags applies to them too. It returns
// the variables used, for a word to the user. getenv is os.Getenv but in
// tests.
func natsFromEnv(f *pflag.FlagSet, getenv func(string) string) ([]string, error) {
	var used []string
	for _, e := range natsEnv {
		v := getenv(e.name)
		if v == "" || f.Changed(e.flag) {
			continue
		}
		if err := f.Set(e.flag, v); err != nil {
			return used, fmt.Errorf("%s: %w", e.name, err)
		}
		used = append(used, e.name)
	}
	return used, nil
}

// natsPassword is the password of a NATS user login from NATS_PASSWORD, when
// the login has a user and no password file: a variable, unlike a flag, is
// not on the command line for ps to show.
func natsPassword(a *queue.Auth, getenv func(string) string) {
	if a.User != "" && a.Password == "" {
		a.Password = getenv("NATS_PASSWORD")
	}
}
