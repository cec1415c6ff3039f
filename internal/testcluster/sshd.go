package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// privsepDir is the empty directory sshd chroots its unprivileged child
// into; the openssh-server package leaves its creation to the init system.
const privsepDir = "/run/sshd"

// sshdConfig is each host's sshd_config. Options left out keep their
// defaults; AcceptEnv in particular defaults to accepting no variables.
const sshdConfig = `# Written by testcluster for %[1]s.
ListenAddress %[2]s
Port 22
AddressFamily inet
HostKey %[3]s
PidFile %[4]s
AuthorizedKeysFile %[5]s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The keys live in test temp dirs, whose owners and modes sshd would reject.
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
PermitUserEnvironment no
# A coordinator may launch many workers on one host at once.
MaxStartups 200
MaxSessions 200
LogLevel INFO
`

// sshConfig is one Host block of the client config.
const sshConfig = `Host %[1]s
	HostName %[2]s
	User root
	Port 22
	IdentityFile %[3]s
	IdentitiesOnly yes
	IdentityAgent none
	UserKnownHostsFile %[4]s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	UpdateHostKeys no
	CheckHostIP no
	BatchMode yes
	ConnectTimeout 5
	ControlMaster no
	ControlPath none
	ForwardAgent no
	# ssh's default, as users have it: its reasons for giving up on a node
	# (a keepalive timeout, say) reach the coordinator's messages.
	LogLevel INFO

`

// startSSH writes the keys and configs and starts an sshd on every host.
func (c *Cluster) startSSH(ctx context.Context) error {
	if err := os.MkdirAll(privsepDir, 0o755); err != nil {
		return err
	}
	c.clientKey = filepath.Join(c.dir, "id_ed25519")
	if err := keygen(ctx, c.clientKey, "testcluster-client"); err != nil {
		return err
	}
	pub, err := os.ReadFile(c.clientKey + ".pub")
	if err != nil {
		return err
	}
	authorized := filepath.Join(c.dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return err
	}
	var knownHosts, clientConfig bytes.Buffer
	c.knownHosts = filepath.Join(c.dir, "known_hosts")
	c.SSHConfig = filepath.Join(c.dir, "ssh_config")
	for _, h := range c.Hosts {
		dir := filepath.Join(c.dir, h.Name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
		if err := keygen(ctx, hostKey, h.Name); err != nil {
			return err
		}
		pub, err := os.ReadFile(hostKey + ".pub")
		if err != nil {
			return err
		}
		typ, key, ok := strings.Cut(strings.TrimSpace(string(pub)), " ")
		if !ok {
			return fmt.Errorf("host key %s.pub: %q", hostKey, pub)
		}
		key, _, _ = strings.Cut(key, " ") // drop the comment
		fmt.Fprintf(&knownHosts, "%s,%s %s %s\n", h.Name, h.Addr, typ, key)
		fmt.Fprintf(&clientConfig, sshConfig, h.Name, h.Addr, c.clientKey, c.knownHosts)
		conf := fmt.Sprintf(sshdConfig, h.Name, h.Addr, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
		h.sshdConfig = filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(h.sshdConfig, []byte(conf), 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.knownHosts, knownHosts.Bytes(), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(c.SSHConfig, clientConfig.Bytes(), 0o600); err != nil {
		return err
	}
	for _, h := range c.Hosts {
		if err := h.startSSHD(); err != nil {
			return err
		}
	}
	// The daemons start in parallel; wait for all of them together.
	errs := make([]error, len(c.Hosts))
	var wg sync.WaitGroup
	for i, h := range c.Hosts {
		wg.Go(func() { errs[i] = h.waitSSH(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// keygen writes a new ed25519 key pair without passphrase to path and
// path.pub.
func keygen(ctx context.Context, path, comment string) error {
	_, err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path)
	return err
}

// StopSSH stops the host's sshd, so that new ssh connections to it are
// refused; sessions already open go on. It is a no-op if sshd is stopped.
func (h *Host) StopSSH() error {
	h.mu.Lock()
	d := h.sshd
	h.sshd = nil
	h.mu.Unlock()
	if d == nil {
		return nil
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop sshd on %s: %w", h.Name, err)
	}
	return nil
}

// StartSSH starts the host's sshd again after StopSSH and waits until it
// accepts logins.
func (h *Host) StartSSH() error {
	if err := h.startSSHD(); err != nil {
		return err
	}
	return h.waitSSH(context.Background())
}

// startSSHD starts sshd in the host's namespace in the foreground (-D), so
// that it stays our child and its PID is known, logging to stderr (-e).
func (h *Host) startSSHD() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sshd != nil {
		return fmt.Errorf("sshd on %s: already running", h.Name)
	}
	// Not tied to a context: it lives until StopSSH or Close.
	cmd := exec.Command("ip", "netns", "exec", h.Netns, SSHD, "-D", "-e", "-f", h.sshdConfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = &h.sshdOut, &h.sshdOut
	cmd.WaitDelay = KillTimeout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd on %s: %w", h.Name, err)
	}
	h.sshd = watch(cmd)
	return nil
}

// waitSSH waits until a real ssh login to the host runs a command, which
// proves sshd listens, the host key is known and the client key accepted.
func (h *Host) waitSSH(ctx context.Context) error {
	h.mu.Lock()
	d := h.sshd
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, SSHReadyTimeout)
	defer cancel()
	ssh := h.cluster.SSHCommand()
	args := slices.Concat(ssh[1:], []string{"-o", "ConnectTimeout=2", h.Name, "true"})
	for {
		_, err := run(ctx, ssh[0], args...)
		if err == nil {
			return nil
		}
		if d == nil || d.exited() {
			return fmt.Errorf("sshd on %s exited: %v\nsshd: %s", h.Name, err, h.sshdOutput())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd on %s (%s) not answering within %v: %v\nsshd: %s",
				h.Name, h.Addr, SSHReadyTimeout, err, h.sshdOutput())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (h *Host) sshdOutput() string {
	return strings.TrimSpace(h.sshdOut.String())
}
