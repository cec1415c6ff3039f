package coordinator

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestPassing(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("create stream: %w", context.DeadlineExceeded), true},
		{nats.ErrTimeout, true},
		{fmt.Errorf("create stream X: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}), true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		// A put into the config bucket right after an R3 cluster made it.
		{fmt.Errorf("store run config: %w", jetstream.ErrNoStreamResponse), true},
		{&jetstream.APIError{Code: 500, ErrorCode: 10074, Description: "replicas > 1 not supported in non-clustered mode"}, false},
		{nats.ErrAuthorization, false},
		{errors.New("disk full"), false},
	}
	for _, tt := range tests {
		if got := passing(tt.err); got != tt.want {
			t.Errorf("passing(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
