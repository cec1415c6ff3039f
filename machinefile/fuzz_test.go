package machinefile

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	sentinels := []error{ErrHost, ErrUser, ErrSlots, ErrPort, ErrOption, ErrLineTooLong, ErrEmpty}
	f.Fuzz(func(t *testing.T, in string) {
		hosts, err := Parse("fuzz", strings.NewReader(in))
		if err != nil {
			checkFuzzError(t, err, sentinels)
			return
		}
		lines := strings.Count(in, "\n") + 1
		seen := make(map[hostKey]bool)
		prevLine := 0
		for _, h := range hosts {
			if h.Name == "" || h.Slots < 1 || h.Slots > MaxSlots || h.Line <= prevLine || h.Line > lines {
				t.Fatalf("Parse(%q): bad host %#v", in, h)
			}
			prevLine = h.Line
			if strings.HasPrefix(h.Destination(), "-") {
				t.Fatalf("Parse(%q): destination %q would be an ssh option", in, h.Destination())
			}
			if seen[h.key()] {
				t.Fatalf("Parse(%q): host %#v listed twice", in, h)
			}
			seen[h.key()] = true

			// String promises machinefile syntax for the same host.
			again, err := Parse("string", strings.NewReader(h.String()))
			want := []Host{{Name: h.Name, User: h.User, Port: h.Port, Slots: 1, Line: 1}}
			if err != nil || !reflect.DeepEqual(again, want) {
				t.Fatalf("Parse(%q) of %#v: got %#v, %v", h.String(), h, again, err)
			}
		}
	})
}

func checkFuzzError(t *testing.T, err error, sentinels []error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if pe.File != "fuzz" || pe.Line < 0 || (pe.Line == 0) != errors.Is(err, ErrEmpty) {
		t.Fatalf("error %v at %s:%d", err, pe.File, pe.Line)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v wraps none of the package's errors", err)
}
