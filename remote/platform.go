package remote

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Platform is an OS and CPU in Go's terms. ARM is the ARM version (6 or 7)
// of a 32-bit ARM CPU, which a build must match or undercut: an armv6
// build runs on an armv7 CPU, not the other way round.
type Platform struct {
	OS   string `json:"os"`
	Arch string `json:"arch"`
	ARM  string `json:"arm,omitempty"`
}

// Builds are the platforms the build script makes, one binary each.
var Builds = []Platform{
	{OS: "linux", Arch: "amd64"},
	{OS: "linux", Arch: "arm64"},
	{OS: "linux", Arch: "arm", ARM: "7"},
	{OS: "linux", Arch: "arm", ARM: "6"},
	{OS: "darwin", Arch: "arm64"},
	{OS: "darwin", Arch: "amd64"},
	{OS: "windows", Arch: "amd64"},
	{OS: "windows", Arch: "arm64"},
}

// cpu is how a platform's CPU is written in a build's name: arm64, armv7.
func (p Platform) cpu() string {
	if p.Arch == "arm" && p.ARM != "" {
		return "armv" + p.ARM
	}
	return p.Arch
}

// String is os/cpu: linux/arm64, linux/armv7.
func (p Platform) String() string { return p.OS + "/" + p.cpu() }

// Known reports whether the platform could be made out.
func (p Platform) Known() bool {
	return p.OS != "" && p.Arch != "" && p.OS != "unknown" && p.Arch != "unknown"
}

// Exe is the suffix of an executable there.
func (p Platform) Exe() string {
	if p.OS == "windows" {
		return ".exe"
	}
	return ""
}

// BuildName is the file name of the build for this platform:
// scrape-linux-armv7, scrape-windows-amd64.exe.
func (p Platform) BuildName() string {
	return "scrape-" + p.OS + "-" + p.cpu() + p.Exe()
}

// Env is what go build needs in its environment to build for p.
func (p Platform) Env() []string {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch}
	if p.Arch == "arm" {
		env = append(env, "GOARM="+p.ARM)
	}
	return env
}

// Own is the platform this program was built for.
func Own() Platform {
	p := Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	if p.Arch == "arm" {
		p.ARM = "7" // go build's default when it cannot tell
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" {
					p.ARM, _, _ = strings.Cut(s.Value, ",") // "6,softfloat"
				}
			}
		}
	}
	return p
}

// ParseUname reads what `uname -sm` prints (or the probe's Windows
// equivalent, "Windows AMD64") as a Platform. What it cannot read is
// "unknown".
func ParseUname(uname string) Platform {
	f := strings.Fields(uname)
	if len(f) < 2 {
		return Platform{OS: "unknown", Arch: "unknown"}
	}
	p := Platform{OS: strings.ToLower(f[0])}
	if strings.IndexFunc(p.OS, func(r rune) bool { return !isAlnum(r) && r != '_' && r != '-' && r != '.' }) >= 0 {
		return Platform{OS: "unknown", Arch: "unknown"} // an error message, not uname
	}
	if strings.HasPrefix(p.OS, "mingw") || strings.HasPrefix(p.OS, "msys") || strings.HasPrefix(p.OS, "cygwin") {
		p.OS = "windows" // a POSIX shell of Git for Windows or Cygwin
	}
	switch m := strings.ToLower(f[len(f)-1]); {
	case m == "x86_64" || m == "amd64" || m == "x64":
		p.Arch = "amd64"
	case m == "aarch64" || m == "arm64" || m == "aarch64_be":
		p.Arch = "arm64"
	case m == "armv6l" || m == "armv6" || m == "arm":
		p.Arch, p.ARM = "arm", "6"
	case strings.HasPrefix(m, "armv"):
		// armv7l, and armv8l: a 32-bit user space on a 64-bit CPU.
		p.Arch, p.ARM = "arm", "7"
	case m == "i386" || m == "i686" || m == "i586" || m == "x86":
		p.Arch = "386"
	case m == "riscv64":
		p.Arch = "riscv64"
	default:
		p.Arch = m
	}
	return p
}

// Runs reports whether a binary built for b runs on a node of platform p.
func (p Platform) Runs(b Platform) bool {
	if p.OS != b.OS || p.Arch != b.Arch {
		return false
	}
	return p.Arch != "arm" || b.ARM <= p.ARM
}

func isAlnum(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }
