package testcluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A foreign host is a namespace host whose login shell is a busybox built
// for another CPU, run by qemu-user through binfmt_misc. Everything its ssh
// sessions start is of that CPU: `uname -sm` in it says `Linux aarch64`
// (busybox runs its own applets, not this machine's), and a binary built for
// it runs under qemu as on the real machine, so to ssh and to scrape the
// host is an arm64 (or armv7) node.
const (
	// ForeignDir holds, per GOARCH, the tree of Debian's busybox-static
	// package for that CPU (dpkg -x), as .ci/run lays it out:
	// ForeignDir/arm64/bin/busybox.
	ForeignDir = "/opt/scrape-testcluster"
	// ForeignDirEnv overrides ForeignDir.
	ForeignDirEnv = "SCRAPE_FOREIGN_DIR"

	binfmtDir = "/proc/sys/fs/binfmt_misc"
	// binfmtConfDir has qemu-user-static's registrations, one file per CPU.
	binfmtConfDir = "/usr/lib/binfmt.d"
)

// foreignCPU is what a foreign host of one GOARCH needs.
type foreignCPU struct {
	qemu  string // qemu's name of the CPU: its binfmt entry is qemu-<qemu>
	uname string // the machine `uname -m` reports there
}

// foreignCPUs are the GOARCH values a host can have besides this machine's.
// "arm" is armv7 (GOARM=7), as Debian's armhf and the Raspberry Pis from
// the 2 on.
var foreignCPUs = map[string]foreignCPU{
	"arm64": {qemu: "aarch64", uname: "aarch64"},
	"arm":   {qemu: "arm", uname: "armv7l"},
}

// HostSpec describes one host of NewHosts.
type HostSpec struct {
	// Arch is the GOARCH of the host's login shell and of what it runs; ""
	// is this machine's own.
	Arch string
}

// Machine is what `uname -m` reports on a host of GOARCH arch made by this
// package, or "" for an arch it cannot make.
func Machine(arch string) string {
	return foreignCPUs[arch].uname
}

// busybox is the path of the busybox for arch.
func busybox(arch string) string {
	dir := ForeignDir
	if v := os.Getenv(ForeignDirEnv); v != "" {
		dir = v
	}
	return filepath.Join(dir, arch, "bin", "busybox")
}

// ForeignAvailable reports why a host of GOARCH arch cannot be made here, or
// "" if it can. It mounts binfmt_misc and registers qemu's entry for the CPU
// when they are missing, as root may: the kernel then hands every ELF of that
// CPU to qemu, in every namespace.
func ForeignAvailable(arch string) string {
	cpu, ok := foreignCPUs[arch]
	if !ok {
		return fmt.Sprintf("testcluster: no foreign host of GOARCH %q (want arm64 or arm)", arch)
	}
	conf := filepath.Join(binfmtConfDir, "qemu-"+cpu.qemu+".conf")
	if _, err := os.Stat(conf); err != nil {
		return fmt.Sprintf("testcluster: no %s (apt-get install qemu-user-static)", conf)
	}
	if why := registerBinfmt(cpu.qemu, conf); why != "" {
		return why
	}
	if _, err := os.Stat(busybox(arch)); err != nil {
		return fmt.Sprintf("testcluster: no %s busybox for the host's shell: %v (.ci/run unpacks busybox-static:%s there)",
			arch, err, debArch(arch))
	}
	return ""
}

// debArch is Debian's name of a GOARCH.
func debArch(arch string) string {
	if arch == "arm" {
		return "armhf"
	}
	return arch
}

// registerBinfmt makes sure the kernel runs ELFs of the CPU through qemu.
func registerBinfmt(qemu, conf string) string {
	if _, err := os.Stat(filepath.Join(binfmtDir, "status")); err != nil {
		if err := syscall.Mount("binfmt_misc", binfmtDir, "binfmt_misc", 0, ""); err != nil {
			return fmt.Sprintf("testcluster: binfmt_misc cannot be mounted on %s: %v", binfmtDir, err)
		}
	}
	entry := filepath.Join(binfmtDir, "qemu-"+qemu)
	if _, err := os.Stat(entry); err != nil {
		rule, err := os.ReadFile(conf)
		if err != nil {
			return fmt.Sprintf("testcluster: %v", err)
		}
		if err := os.WriteFile(filepath.Join(binfmtDir, "register"), bytes.TrimSpace(rule), 0); err != nil {
			return fmt.Sprintf("testcluster: register %s with binfmt_misc: %v", conf, err)
		}
	}
	state, err := os.ReadFile(entry)
	if err != nil {
		return fmt.Sprintf("testcluster: binfmt_misc entry qemu-%s: %v", qemu, err)
	}
	if first, _, _ := strings.Cut(string(state), "\n"); first != "enabled" {
		return fmt.Sprintf("testcluster: binfmt_misc entry qemu-%s is %s", qemu, first)
	}
	return ""
}

// loginShell is the login shell of h's user: "" keeps this machine's. For a
// foreign host it is a link named sh to the foreign busybox, which tells
// busybox to be a shell (binfmt's P flag keeps that name for it).
func (c *Cluster) loginShell(h *Host) (string, error) {
	if h.Arch == "" {
		return "", nil
	}
	dir := filepath.Join(c.dir, "shell-"+h.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	sh := filepath.Join(dir, "sh")
	return sh, os.Symlink(busybox(h.Arch), sh)
}
