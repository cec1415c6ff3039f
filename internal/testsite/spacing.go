package testsite

import (
	"fmt"
	"time"
)

// SpacingProblems says how starts (as a site saw them, in order) fall short
// of being delay apart, or nothing if they are spaced. The coordinator
// grants starts delay apart by its clock; what the site sees shifts by each
// request's way there: a millisecond on an idle machine, several on a loaded
// one, and tens when the worker holding a grant is descheduled while the
// next one's is not, which shortens one gap and lengthens the next. So a few
// gaps may come in a fifth short, none by more than three quarters, and the
// starts as a whole must span the delays. Unspaced requests start together,
// 0 ms apart, and fail all three.
func SpacingProblems(starts []time.Time, delay time.Duration) []string {
	var problems []string
	slack := delay / 5
	short := 0
	for i := 1; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		if gap < delay-slack {
			short++
		}
		if gap < delay/4 {
			problems = append(problems, fmt.Sprintf("requests %d and %d started %s apart, want about %s", i-1, i, gap, delay))
		}
	}
	if most := max(1, (len(starts)-1)/10); short > most {
		problems = append(problems, fmt.Sprintf("%d of %d gaps between starts were shorter than %s, want %d at most", short, len(starts)-1, delay-slack, most))
	}
	if n := len(starts); n > 1 {
		if span, least := starts[n-1].Sub(starts[0]), time.Duration(n-1)*(delay-slack/4); span < least {
			problems = append(problems, fmt.Sprintf("%d starts spanned %s, want at least %s", n, span, least))
		}
	}
	return problems
}
