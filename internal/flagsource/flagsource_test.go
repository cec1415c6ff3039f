package flagsource

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// flags is a small flag set of every kind the tests set: a string, a
// number, a duration, a switch, a count, a repeatable one and one with an
// optional value.
type flags struct {
	ua      string
	perSlot int
	timeout time.Duration
	same    bool
	verbose int
	headers []string
	private string
	set     *pflag.FlagSet
}

func newFlags(t *testing.T, args ...string) *flags {
	t.Helper()
	v := &flags{set: pflag.NewFlagSet("test", pflag.ContinueOnError)}
	f := v.set
	f.StringVar(&v.ua, "user-agent", "default-agent", "")
	f.IntVar(&v.perSlot, "per-slot", 16, "")
	f.DurationVar(&v.timeout, "timeout", 30*time.Second, "")
	f.BoolVar(&v.same, "same-host", false, "")
	f.CountVarP(&v.verbose, "verbose", "v", "")
	f.StringArrayVarP(&v.headers, "header", "H", nil, "")
	f.StringVar(&v.private, "allow-private", "", "")
	f.Lookup("allow-private").NoOptDefVal = "all"
	f.String("resume", "", "")
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	return v
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func skipResume(fl *pflag.Flag) bool { return fl.Name == "resume" }

func TestFromEnv(t *testing.T) {
	v := newFlags(t, "--per-slot", "4")
	used, err := FromEnv(v.set, "SCRAPE_", env(map[string]string{
		"SCRAPE_PER_SLOT":   "64", // given on the command line: it wins
		"SCRAPE_TIMEOUT":    "5s",
		"SCRAPE_SAME_HOST":  "true",
		"SCRAPE_VERBOSE":    "2",
		"SCRAPE_HEADER":     "X-A: 1, 2\nX-B: 3\n",
		"SCRAPE_USER_AGENT": "", // empty: unset
		"SCRAPE_RESUME":     "/tmp/state",
		"SCRAPE_LONG":       "1", // not a flag: someone else's
	}), skipResume)
	if err != nil {
		t.Fatal(err)
	}
	if v.perSlot != 4 || v.timeout != 5*time.Second || !v.same || v.verbose != 2 || v.ua != "default-agent" {
		t.Errorf("per-slot %d timeout %s same-host %v verbose %d user-agent %q", v.perSlot, v.timeout, v.same, v.verbose, v.ua)
	}
	if want := []string{"X-A: 1, 2", "X-B: 3"}; !reflect.DeepEqual(v.headers, want) {
		t.Errorf("headers %q, want %q", v.headers, want)
	}
	if got, _ := v.set.GetString("resume"); got != "" {
		t.Errorf("resume %q from the environment", got)
	}
	if want := []string{"SCRAPE_HEADER", "SCRAPE_SAME_HOST", "SCRAPE_TIMEOUT", "SCRAPE_VERBOSE"}; !reflect.DeepEqual(used, want) {
		t.Errorf("used %q, want %q", used, want)
	}
	if !v.set.Changed("timeout") {
		t.Error("a flag set from the environment does not count as given")
	}
}

func TestFromEnvRefusesBadValues(t *testing.T) {
	for name, val := range map[string]string{"SCRAPE_TIMEOUT": "soon", "SCRAPE_PER_SLOT": "many", "SCRAPE_SAME_HOST": "maybe"} {
		v := newFlags(t)
		_, err := FromEnv(v.set, "SCRAPE_", env(map[string]string{name: val}), nil)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming the variable", name, val, err)
		}
	}
}

func TestParseFile(t *testing.T) {
	tests := []struct {
		line string
		want Setting
	}{
		{"per-slot = 32", Setting{Name: "per-slot", Value: "32"}},
		{"per-slot=32", Setting{Name: "per-slot", Value: "32"}},
		{"--per-slot 32", Setting{Name: "per-slot", Value: "32"}},
		{"  timeout\t= 10s  ", Setting{Name: "timeout", Value: "10s"}},
		{"header = X-Token: a=b", Setting{Name: "header", Value: "X-Token: a=b"}},
		{`user-agent = " spaced # not a comment "`, Setting{Name: "user-agent", Value: " spaced # not a comment "}},
		{"same-host", Setting{Name: "same-host", Bare: true}},
		{"select = price=.price", Setting{Name: "select", Value: "price=.price"}},
	}
	for _, tt := range tests {
		got, err := ParseFile(strings.NewReader("# a comment\n\n"+tt.line+"\n"), "c.conf")
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		tt.want.Line = 3
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseFileErrorsNameTheLine(t *testing.T) {
	tests := []struct{ text, want string }{
		{"per-slot = 2\n= 3\n", "c.conf:2:"},
		{"# x\n---x = 1\n", "c.conf:2:"},
		{"user-agent = \"open\n", `c.conf:1: user-agent: the value "open is not a complete quoted string`},
	}
	for _, tt := range tests {
		_, err := ParseFile(strings.NewReader(tt.text), "c.conf")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one beginning %q", tt.text, err, tt.want)
		}
	}
}

func TestApply(t *testing.T) {
	conf := "per-slot = 8\ntimeout = 3s\nsame-host\nverbose\nallow-private\nheader = X-A: 1\nheader = X-B: 2\nuser-agent = from-file\n"
	settings, err := ParseFile(strings.NewReader(conf), "c.conf")
	if err != nil {
		t.Fatal(err)
	}
	// The command line gives --user-agent, the environment --timeout: the
	// file gives the rest.
	v := newFlags(t, "--user-agent", "from-flag")
	if _, err := FromEnv(v.set, "SCRAPE_", env(map[string]string{"SCRAPE_TIMEOUT": "1s"}), nil); err != nil {
		t.Fatal(err)
	}
	if err := Apply(v.set, settings, "c.conf", skipResume); err != nil {
		t.Fatal(err)
	}
	if v.ua != "from-flag" || v.timeout != time.Second || v.perSlot != 8 || !v.same || v.verbose != 1 || v.private != "all" {
		t.Errorf("user-agent %q timeout %s per-slot %d same-host %v verbose %d allow-private %q", v.ua, v.timeout, v.perSlot, v.same, v.verbose, v.private)
	}
	if want := []string{"X-A: 1", "X-B: 2"}; !reflect.DeepEqual(v.headers, want) {
		t.Errorf("headers %q, want %q: the file's lines of one flag all apply", v.headers, want)
	}
}

func TestApplyErrorsNameTheLine(t *testing.T) {
	tests := []struct{ conf, want string }{
		{"per-slot = 2\nper-slots = 3\n", "c.conf:2: no flag --per-slots here"},
		{"resume = /tmp/x\n", "c.conf:1: no flag --resume here"},
		{"\ntimeout\n", "c.conf:2: --timeout needs a value"},
		{"timeout = 1 hour\n", `c.conf:1: --timeout: `},
	}
	for _, tt := range tests {
		settings, err := ParseFile(strings.NewReader(tt.conf), "c.conf")
		if err != nil {
			t.Fatal(err)
		}
		err = Apply(newFlags(t).set, settings, "c.conf", skipResume)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one beginning %q", tt.conf, err, tt.want)
		}
	}
}

// Whatever a config file holds, reading it gives settings or an error
// naming a line, and a setting written back as name = "value" reads back
// the same.
func FuzzParseFile(f *testing.F) {
	f.Add("per-slot = 32\n# c\nsame-host\nheader = X: \"y\"\n")
	f.Add(`user-agent = "a\tb"` + "\n--depth 2\n")
	f.Add("=\n")
	f.Fuzz(func(t *testing.T, text string) {
		settings, err := ParseFile(strings.NewReader(text), "f")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") && !strings.HasPrefix(err.Error(), "read f") {
				t.Fatalf("error %q names no line", err)
			}
			return
		}
		for _, s := range settings {
			if s.Name == "" || s.Line < 1 {
				t.Fatalf("setting %+v", s)
			}
			if s.Bare || strings.ContainsAny(s.Name, "=\"") {
				continue
			}
			back, err := ParseFile(strings.NewReader(s.Name+" = "+strconv.Quote(s.Value)+"\n"), "f")
			if err != nil || len(back) != 1 || back[0].Name != s.Name || back[0].Value != s.Value {
				t.Fatalf("%+v written back read %+v, %v", s, back, err)
			}
		}
	})
}
