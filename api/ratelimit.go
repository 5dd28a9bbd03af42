package api

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-redis/redis_rate/v10"
)

// RateLimit limits requests per API key and per session. The counters live in Redis, so
// every API replica shares them.
type RateLimit struct {
	Limiter *redis_rate.Limiter
	// PerMinute is the sustained rate; Burst is how many requests a key
	// or session may send at once after being idle.
	PerMinute int
	Burst     int
}

// rateLimitTimeout bounds the Redis call of one request. When Redis is slow
// or down the request goes through unlimited, because the API keeps
// accepting writes during a Redis outage.
const rateLimitTimeout = 200 * time.Millisecond

// withRateLimit returns middleware that counts each authenticated request
// against the limit of its API key or session with the GCRA of redis_rate.
// It sets the RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// headers, and returns 429 with Retry-After when the caller is over its
// limit. It runs after authenticate.
func withRateLimit(api huma.API, limit RateLimit, logger *slog.Logger) func(huma.Context, func(huma.Context)) {
	rate := redis_rate.Limit{Rate: limit.PerMinute, Burst: limit.Burst, Period: time.Minute}
	return func(ctx huma.Context, next func(huma.Context)) {
		c, ok := callerFrom(ctx.Context())
		if !ok {
			next(ctx)
			return
		}
		callCtx, cancel := context.WithTimeout(ctx.Context(), rateLimitTimeout)
		res, err := limit.Limiter.Allow(callCtx, c.limitSubject(), rate)
		cancel()
		if err != nil {
			logger.WarnContext(ctx.Context(), "rate limit unavailable; request not limited",
				slog.String("request_id", requestID(ctx.Context())),
				slog.String("caller", c.id()),
				slog.String("err", err.Error()))
			next(ctx)
			return
		}

		ctx.SetHeader("RateLimit-Limit", strconv.Itoa(limit.Burst))
		ctx.SetHeader("RateLimit-Remaining", strconv.Itoa(remaining(res, rate)))
		ctx.SetHeader("RateLimit-Reset", strconv.Itoa(ceilSeconds(res.ResetAfter)))
		if res.Allowed > 0 {
			next(ctx)
			return
		}
		retry := ceilSeconds(res.RetryAfter)
		ctx.SetHeader("Retry-After", strconv.Itoa(retry))
		_ = huma.WriteErr(api, ctx, http.StatusTooManyRequests, fmt.Sprintf(
			"rate limit exceeded: %s may send %d requests per minute with bursts of %d; retry after %d s",
			c.limitName(), limit.PerMinute, limit.Burst, retry))
	}
}

// remaining returns how many requests the caller may still send at once.
// redis_rate truncates its float count, which reads one low after a
// request from a full bucket, so the count is derived from the time the
// bucket needs to refill: one emission interval per request used.
func remaining(res *redis_rate.Result, rate redis_rate.Limit) int {
	if res.Allowed == 0 {
		return 0
	}
	interval := rate.Period / time.Duration(rate.Rate)
	used := int(math.Round(float64(res.ResetAfter) / float64(interval)))
	return max(0, min(rate.Burst, rate.Burst-used))
}

// ceilSeconds rounds d up to whole seconds, at least 0.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}
