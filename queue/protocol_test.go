package queue

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestReadBootstrap(t *testing.T) {
	version := `{"version":` + strconv.Itoa(ProtocolVersion)
	good := version + `,"servers":["nats://10.0.0.1:4222"],"user":"u","password":"p","run":"R","node":"n","slots":4}`
	tests := []struct {
		name, in, err string
	}{
		{"good", good + "\n", ""},
		{"good without newline", good, ""},
		{"empty", "", "read bootstrap from stdin"},
		{"not json", "hello\n", "decode bootstrap"},
		{"other version", `{"version":99,"servers":["x"],"run":"R"}` + "\n", "protocol 99"},
		{"no server", version + `,"run":"R"}` + "\n", "no server"},
		{"too long", strings.Repeat("x", 5<<20), "too long"},
	}
	for _, tt := range tests {
		r := bufio.NewReaderSize(strings.NewReader(tt.in+"\nlifeline"), maxBootstrap)
		b, err := ReadBootstrap(r)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if b.Password != "p" || b.Slots != 4 || b.Servers[0] != "nats://10.0.0.1:4222" {
				t.Errorf("%s: %+v", tt.name, b)
			}
			// The reader is left at the lifeline, not past it.
			rest, _ := io.ReadAll(r)
			if !strings.Contains(string(rest), "lifeline") {
				t.Errorf("%s: bootstrap read too far, left %q", tt.name, rest)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.err)
		}
	}
}
