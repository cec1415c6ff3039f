package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/queue"
)

// natsFlags are how scrape run and scrape worker reach an existing NATS, with
// the options NATS's own tools use. Secrets are read from files, never taken
// as flag values, which ps would show.
type natsFlags struct {
	URLs string `json:"nats,omitempty"`
	queue.AuthFiles
}

func (n *natsFlags) bind(f *pflag.FlagSet, use string) {
	f.StringVar(&n.URLs, "nats", "", use)
	f.StringVar(&n.Creds, "creds", "", "NATS credentials `file` (user JWT and seed)")
	f.StringVar(&n.NKey, "nkey", "", "NATS NKey seed `file`")
	f.StringVar(&n.User, "nats-user", "", "NATS user `name` (password from --nats-password-file)")
	f.StringVar(&n.PasswordFile, "nats-password-file", "", "`file` holding the NATS user's password")
	f.StringVar(&n.TokenFile, "nats-token-file", "", "`file` holding a NATS token")
	f.StringVar(&n.CA, "tls-ca", "", "PEM `file` of the CA that signs the NATS server's certificate")
}

// servers splits --nats: comma-separated URLs, as NATS tools take them.
func (n *natsFlags) servers() []string {
	var out []string
	for _, u := range strings.Split(n.URLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
