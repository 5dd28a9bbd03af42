package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// acquireScript takes a slot in the sorted set KEYS[1], whose members are
// delivery IDs scored by the Unix millisecond at which their lease expires.
// Expired leases are dropped first, so a worker that crashed mid-attempt
// frees its slot after the lease. ARGV: now (ms), lease expiry (ms),
// member, limit. It returns {1} when the slot is held, and otherwise {0,
// expiry of the oldest lease in ms}.
var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
	redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
	redis.call('PEXPIREAT', KEYS[1], ARGV[2])
	return {1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2])}
`)

// endpointLimiter caps the attempts in flight per endpoint across every
// worker process, with leases kept in Redis.
type endpointLimiter struct {
	rdb   redis.UniversalClient
	limit int
	lease time.Duration
}

func limiterKey(endpointID string) string {
	return "outpost:webhooks:inflight:" + endpointID
}

// acquire takes one of the endpoint's slots for deliveryID until release or
// until the lease runs out, and reports whether it got one. When it did
// not, it also returns how long the oldest attempt in flight has run.
func (l *endpointLimiter) acquire(ctx context.Context, endpointID, deliveryID string, now time.Time) (bool, time.Duration, error) {
	expiry := now.Add(l.lease)
	res, err := acquireScript.Run(ctx, l.rdb, []string{limiterKey(endpointID)},
		now.UnixMilli(), expiry.UnixMilli(), deliveryID, l.limit).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("acquire endpoint slot: %w", err)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	var oldest time.Duration
	if len(res) > 1 {
		started := time.UnixMilli(res[1]).Add(-l.lease)
		oldest = now.Sub(started)
	}
	return false, oldest, nil
}

func (l *endpointLimiter) release(ctx context.Context, endpointID, deliveryID string) error {
	if err := l.rdb.ZRem(ctx, limiterKey(endpointID), deliveryID).Err(); err != nil {
		return fmt.Errorf("release endpoint slot: %w", err)
	}
	return nil
}
