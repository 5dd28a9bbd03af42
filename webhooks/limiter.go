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
// frees its slot after the lease. Times come from the Redis server's clock,
// so workers whose clocks disagree cannot cut each other's leases short.
// ARGV: lease (ms), member, limit. It returns {1} when the slot is held, and
// otherwise {0, age of the oldest lease in ms}.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
	redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
	local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
	redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
	return {1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, now - (tonumber(oldest[2]) - lease)}
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
func (l *endpointLimiter) acquire(ctx context.Context, endpointID, deliveryID string) (bool, time.Duration, error) {
	res, err := acquireScript.Run(ctx, l.rdb, []string{limiterKey(endpointID)},
		l.lease.Milliseconds(), deliveryID, l.limit).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("acquire endpoint slot: %w", err)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	var oldest time.Duration
	if len(res) > 1 {
		oldest = time.Duration(res[1]) * time.Millisecond
	}
	return false, oldest, nil
}

func (l *endpointLimiter) release(ctx context.Context, endpointID, deliveryID string) error {
	if err := l.rdb.ZRem(ctx, limiterKey(endpointID), deliveryID).Err(); err != nil {
		return fmt.Errorf("release endpoint slot: %w", err)
	}
	return nil
}
