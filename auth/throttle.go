package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/outposthq/outpost/models"
)

// Sign-in attempt limits. Each attempt counts, and a successful sign-in
// clears its account's count. Past the burst, an account may try once
// every 90 s and an address once every 30 s.
var (
	attemptsPerAccount = redis_rate.Limit{Rate: 10, Burst: 10, Period: 15 * time.Minute}
	attemptsPerAddress = redis_rate.Limit{Rate: 30, Burst: 30, Period: 15 * time.Minute}
)

// Throttle slows repeated sign-in attempts for one account or from one
// address. The counters live in Redis, so every API replica shares them.
type Throttle struct {
	limiter *redis_rate.Limiter
}

// NewThrottle returns a Throttle that counts with limiter.
func NewThrottle(limiter *redis_rate.Limiter) *Throttle {
	return &Throttle{limiter: limiter}
}

// Attempt counts a sign-in attempt for email from address and returns 0
// when it may go ahead, or how long to wait when either limit is reached.
// An attempt rejected by the address limit does not count against the
// account.
func (t *Throttle) Attempt(ctx context.Context, email, address string) (time.Duration, error) {
	res, err := t.limiter.Allow(ctx, addressKey(address), attemptsPerAddress)
	if err != nil {
		return 0, err
	}
	if res.Allowed == 0 {
		return res.RetryAfter, nil
	}
	res, err = t.limiter.Allow(ctx, accountKey(email), attemptsPerAccount)
	if err != nil {
		return 0, err
	}
	if res.Allowed == 0 {
		return res.RetryAfter, nil
	}
	return 0, nil
}

// AttemptAccount counts an attempt to prove the password of email, such as
// a password change, against the account only, and returns how long to
// wait when its limit is reached.
func (t *Throttle) AttemptAccount(ctx context.Context, email string) (time.Duration, error) {
	res, err := t.limiter.Allow(ctx, accountKey(email), attemptsPerAccount)
	if err != nil {
		return 0, err
	}
	if res.Allowed == 0 {
		return res.RetryAfter, nil
	}
	return 0, nil
}

// Succeeded clears the account's count after a successful sign-in.
func (t *Throttle) Succeeded(ctx context.Context, email string) error {
	return t.limiter.Reset(ctx, accountKey(email))
}

// accountKey names the counter of an email address by its hash, so that
// Redis stores no addresses.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(models.NormalizeEmail(email))))
	return "signin:account:" + hex.EncodeToString(sum[:16])
}

// addressKey names the counter of a client address. IPv6 addresses count
// by their /64 prefix, because one client is usually given a whole /64.
func addressKey(address string) string {
	if a, err := netip.ParseAddr(address); err == nil && a.Is6() && !a.Is4In6() {
		address = netip.PrefixFrom(a, 64).Masked().String()
	}
	return "signin:address:" + address
}
