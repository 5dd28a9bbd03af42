package webhooks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryError asks the queue to run a delivery task again after Delay. A
// failed attempt returns one with the delay from the retry schedule or from
// the receiver's Retry-After. A task that found its endpoint at its in-flight
// limit returns one with Busy set: it made no attempt, so it must not count
// against the task's retries.
type RetryError struct {
	Delay time.Duration
	Busy  bool
	Err   error
}

// Error describes the failure and the delay before the next run.
func (e *RetryError) Error() string {
	if e.Busy {
		return fmt.Sprintf("endpoint busy; retry in %s", e.Delay.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v; retry in %s", e.Err, e.Delay.Round(time.Second))
}

// Unwrap returns the failure that caused the retry.
func (e *RetryError) Unwrap() error { return e.Err }

// RetryDelay returns the delay of a RetryError in err's chain.
func RetryDelay(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) {
		return re.Delay, true
	}
	return 0, false
}

// IsBusy reports whether err is a RetryError for an endpoint at its
// in-flight limit, which is not a failure of the delivery.
func IsBusy(err error) bool {
	var re *RetryError
	return errors.As(err, &re) && re.Busy
}

// busyDelay spreads the re-runs of tasks that found their endpoint busy over
// two to four seconds, so that a large backlog behind a slow endpoint costs
// little worker time.
func busyDelay() time.Duration {
	return 2*time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))
}
