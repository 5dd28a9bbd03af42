package api_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

var (
	rateRedisOnce sync.Once
	rateRedisURL  string
)

// rateRedis returns a new client of Redis database index 12, where the
// rate limits and sign-in throttles of these tests count.
func rateRedis(t *testing.T) *redis.Client {
	t.Helper()
	// RedisURL flushes the index, so only the first test may call it.
	rateRedisOnce.Do(func() { rateRedisURL = testenv.RedisURL(t, 12) })
	require.NotEmpty(t, rateRedisURL, "preparing the Redis test database failed in an earlier test")
	opt, err := redis.ParseURL(rateRedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { require.NoError(t, rdb.Close()) })
	return rdb
}

// replica returns an API that shares s's database and a Redis database index
// 12 through its own Redis client, as a separate API process would.
func (s *server) replica(t *testing.T, perMinute, burst int) humatest.TestAPI {
	t.Helper()
	deps := s.deps
	deps.RateLimit = api.RateLimit{Limiter: redis_rate.NewLimiter(rateRedis(t)), PerMinute: perMinute, Burst: burst}
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)
	return tapi
}

func TestRateLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	s := setup(t)
	first := s.replica(t, 2, 2)
	second := s.replica(t, 2, 2)
	auth := s.roleAuth(t, models.RoleViewer)

	rec := first.Get("/api/tickets?limit=1", auth)
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	require.Equal(t, "2", rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "1", rec.Header().Get("RateLimit-Remaining"))
	require.NotEmpty(t, rec.Header().Get("RateLimit-Reset"))

	rec = second.Get("/api/tickets?limit=1", auth)
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"), "the second replica sees the first request")

	rec = first.Get("/api/tickets?limit=1", auth)
	p := requireProblem(t, rec, http.StatusTooManyRequests)
	require.Contains(t, p.Detail, "2 requests per minute")
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", rec.Header().Get("Retry-After"))
	require.Positive(t, retry)
	require.LessOrEqual(t, retry, 30, "one request comes back every 30 s at 2 per minute")
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))

	other := s.roleAuth(t, models.RoleViewer)
	rec = second.Get("/api/tickets?limit=1", other)
	require.Equal(t, http.StatusOK, rec.Code, "another API key has its own limit; body: %s", rec.Body)
}

func TestRateLimitSkipsBadKeys(t *testing.T) {
	t.Parallel()
	s := setup(t)
	tapi := s.replica(t, 1, 1)
	for range 3 {
		rec := tapi.Get("/api/tickets", "Authorization: Bearer opk_invalid")
		requireProblem(t, rec, http.StatusUnauthorized)
		require.Empty(t, rec.Header().Get("RateLimit-Limit"))
	}
}

func TestRateLimitRemainingCount(t *testing.T) {
	t.Parallel()
	s := setup(t)
	// One request comes back a second, so a slow test run cannot change
	// the count.
	tapi := s.replica(t, 60, 100)
	auth := s.roleAuth(t, models.RoleViewer)
	for want := 99; want >= 95; want-- {
		rec := tapi.Get("/api/tickets?limit=1", auth)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, strconv.Itoa(want), rec.Header().Get("RateLimit-Remaining"))
	}
}
