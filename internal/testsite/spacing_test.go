package testsite

import (
	"testing"
	"time"
)

func TestSpacingProblems(t *testing.T) {
	const d = 50 * time.Millisecond
	at := func(ms ...int) []time.Time {
		t0 := time.Unix(0, 0)
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	tests := []struct {
		name   string
		starts []time.Time
		ok     bool
	}{
		{"spaced", at(0, 50, 101, 160, 210, 262), true},
		{"one late grant, the next early", at(0, 50, 100, 165, 185, 250, 300, 350, 400, 450, 500, 550), true},
		{"pairs at once", at(0, 0, 50, 50, 100, 100), false},
		{"all a bit short", at(0, 38, 76, 114, 152, 190), false},
		{"one start", at(0), true},
	}
	for _, tt := range tests {
		p := SpacingProblems(tt.starts, d)
		if (len(p) == 0) != tt.ok {
			t.Errorf("%s: problems %q, want ok %v", tt.name, p, tt.ok)
		}
	}
}
