package coordinator

import (
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name       string
		base       time.Duration
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration // the wait, jitter included
	}{
		{"first retry", time.Second, 2, 0, 500 * time.Millisecond, 1500 * time.Millisecond},
		{"second retry doubles", time.Second, 3, 0, time.Second, 3 * time.Second},
		{"third retry doubles again", time.Second, 4, 0, 2 * time.Second, 6 * time.Second},
		{"Retry-After longer than the backoff", time.Second, 2, 30 * time.Second, 30 * time.Second, 30 * time.Second},
		{"Retry-After of an hour is capped", time.Second, 2, time.Hour, maxBackoff, maxBackoff},
		// 1 s << 33 wraps a Duration negative; << 34 and on overflow it,
		// which made rand.N panic and killed the run.
		{"attempt 35 does not wrap negative", time.Second, 35, 0, maxBackoff / 2, maxBackoff},
		{"attempt 36 does not overflow", time.Second, 36, 0, maxBackoff / 2, maxBackoff},
		{"attempt 1000", time.Second, 1000, 0, maxBackoff / 2, maxBackoff},
		{"a large base reaches the cap sooner", time.Hour, 40, 0, maxBackoff / 2, maxBackoff},
		{"a base above the cap", 24 * time.Hour, 2, 0, maxBackoff / 2, maxBackoff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				if d := backoff(tt.base, tt.attempt, tt.retryAfter); d < tt.lo || d > tt.hi {
					t.Fatalf("backoff(%s, %d, %s) = %s, want %s to %s", tt.base, tt.attempt, tt.retryAfter, d, tt.lo, tt.hi)
				}
			}
		})
	}
}

func TestRetriesBounded(t *testing.T) {
	for _, n := range []int{-1, MaxRetries + 1, 1 << 40} {
		cfg := Config{Input: strings.NewReader(""), Retries: n}
		if err := cfg.setDefaults(); err == nil {
			t.Errorf("retries %d accepted", n)
		}
	}
	cfg := Config{Input: strings.NewReader(""), Retries: MaxRetries}
	if err := cfg.setDefaults(); err != nil {
		t.Errorf("retries %d refused: %v", MaxRetries, err)
	}
}
