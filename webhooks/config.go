package webhooks

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Config tunes delivery. The zero value of a field means its default.
type Config struct {
	// RetrySchedule is the delay before each retry; its length is the number
	// of retries after the first attempt. Each delay varies by up to ±10%
	// so that retries of many deliveries spread out.
	// Default: 5s, 5m, 30m, 2h, 5h, 10h, 10h (about 28 hours in all).
	RetrySchedule []time.Duration

	// Timeout bounds one attempt: connecting, sending and reading the
	// response. Default 15s.
	Timeout time.Duration

	// TaskTimeout is asynq's deadline for one delivery task. It must exceed
	// Timeout, so that asynq never abandons an attempt that is still running
	// and starts a second copy of it. Default Timeout + 30s.
	TaskTimeout time.Duration

	// MaxResponseBytes is how much of a response body is read and stored.
	// Default 64 KiB.
	MaxResponseBytes int64

	// MaxInFlightPerEndpoint caps the attempts to one endpoint that run at
	// once across all workers, so that a slow endpoint cannot occupy every
	// worker. Default 4.
	MaxInFlightPerEndpoint int

	// MaxRetryAfter is the upper bound of a delay requested by a 429 or 503
	// response with Retry-After. Default 6h.
	MaxRetryAfter time.Duration

	// DisableAfter is how long an endpoint may fail without a single success
	// before it is disabled. Default 5 days.
	DisableAfter time.Duration

	// AllowPrivateNetworks lifts the SSRF guard, so that endpoints may be on
	// loopback or private addresses. For local development and tests only.
	AllowPrivateNetworks bool

	// UserAgent is sent with every delivery. Default "Outpost-Webhooks/1".
	UserAgent string
}

// DefaultRetrySchedule is the retry schedule when none is configured.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// minTaskTimeoutMargin is how much longer than the HTTP timeout the task
// timeout must be, to cover loading and recording an attempt.
const minTaskTimeoutMargin = 5 * time.Second

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule = DefaultRetrySchedule
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.TaskTimeout == 0 {
		c.TaskTimeout = c.Timeout + 30*time.Second
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 64 << 10
	}
	if c.MaxInFlightPerEndpoint == 0 {
		c.MaxInFlightPerEndpoint = 4
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = 6 * time.Hour
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = 5 * 24 * time.Hour
	}
	if c.UserAgent == "" {
		c.UserAgent = "Outpost-Webhooks/1"
	}
	return c
}

// Validate reports settings that cannot work together. It applies the
// defaults first.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.TaskTimeout < c.Timeout+minTaskTimeoutMargin {
		return fmt.Errorf("webhook task timeout %s must exceed the HTTP timeout %s by at least %s, "+
			"or a slow endpoint could receive two copies of one attempt", c.TaskTimeout, c.Timeout, minTaskTimeoutMargin)
	}
	if c.MaxInFlightPerEndpoint < 1 {
		return fmt.Errorf("webhook in-flight limit per endpoint must be at least 1, got %d", c.MaxInFlightPerEndpoint)
	}
	for _, d := range c.RetrySchedule {
		if d <= 0 {
			return fmt.Errorf("webhook retry delays must be positive, got %s", d)
		}
	}
	return nil
}

// RetryDelay returns the delay before retry n+1 of a delivery: the n-th
// entry of the schedule, or its last entry past the end, with jitter.
func (c Config) RetryDelay(n int) time.Duration {
	d := c.RetrySchedule[min(n, len(c.RetrySchedule)-1)]
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}
