package remote

import "testing"

func TestParseUname(t *testing.T) {
	for _, c := range []struct {
		uname string
		want  Platform
		build string
	}{
		{"Linux x86_64", Platform{"linux", "amd64", ""}, "scrape-linux-amd64"},
		{"Linux aarch64", Platform{"linux", "arm64", ""}, "scrape-linux-arm64"},
		{"Linux armv7l", Platform{"linux", "arm", "7"}, "scrape-linux-armv7"},
		{"Linux armv8l", Platform{"linux", "arm", "7"}, "scrape-linux-armv7"},
		{"Linux armv6l", Platform{"linux", "arm", "6"}, "scrape-linux-armv6"},
		{"Darwin arm64", Platform{"darwin", "arm64", ""}, "scrape-darwin-arm64"},
		{"Darwin x86_64", Platform{"darwin", "amd64", ""}, "scrape-darwin-amd64"},
		{"FreeBSD amd64", Platform{"freebsd", "amd64", ""}, "scrape-freebsd-amd64"},
		{"Windows AMD64", Platform{"windows", "amd64", ""}, "scrape-windows-amd64.exe"},
		{"Windows ARM64", Platform{"windows", "arm64", ""}, "scrape-windows-arm64.exe"},
		{"MINGW64_NT-10.0-19045 x86_64", Platform{"windows", "amd64", ""}, "scrape-windows-amd64.exe"},
		{"Linux riscv64", Platform{"linux", "riscv64", ""}, "scrape-linux-riscv64"},
		{"Linux  i686\r", Platform{"linux", "386", ""}, "scrape-linux-386"},
	} {
		got := ParseUname(c.uname)
		if got != c.want || got.BuildName() != c.build {
			t.Errorf("ParseUname(%q) = %+v (%s), want %+v (%s)", c.uname, got, got.BuildName(), c.want, c.build)
		}
	}
	for _, bad := range []string{"", "Linux", "'uname' is not recognized"} {
		if p := ParseUname(bad); p.Known() {
			t.Errorf("ParseUname(%q) = %+v, want unknown", bad, p)
		}
	}
}

func TestRuns(t *testing.T) {
	v6 := Platform{"linux", "arm", "6"}
	v7 := Platform{"linux", "arm", "7"}
	amd := Platform{"linux", "amd64", ""}
	for _, c := range []struct {
		node, build Platform
		want        bool
	}{
		{v7, v6, true},
		{v7, v7, true},
		{v6, v7, false},
		{amd, amd, true},
		{amd, Platform{"windows", "amd64", ""}, false},
		{amd, Platform{"linux", "arm64", ""}, false},
	} {
		if got := c.node.Runs(c.build); got != c.want {
			t.Errorf("%s runs %s: %v, want %v", c.node, c.build, got, c.want)
		}
	}
}

func TestBuildsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Builds {
		if seen[p.BuildName()] {
			t.Errorf("two builds named %s", p.BuildName())
		}
		seen[p.BuildName()] = true
	}
	if !seen[Own().BuildName()] && Own().OS == "linux" {
		t.Errorf("this machine's platform %s is not among the builds", Own())
	}
}
