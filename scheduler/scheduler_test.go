package scheduler_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/scheduler"
	"github.com/outposthq/outpost/tasks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestTwoSchedulersEnqueueRelayOncePerTick(t *testing.T) {
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t, 7))
	require.NoError(t, err)
	inspector := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { _ = inspector.Close() })

	// No worker runs, so every enqueued relay task stays pending and can be
	// counted. Each scheduler fires every second; without the unique lock
	// two schedulers would enqueue two tasks per tick.
	start := time.Now()
	for range 2 {
		s, err := scheduler.New(redisOpt, scheduler.Config{RelayInterval: time.Second}, testenv.Logger(t))
		require.NoError(t, err)
		require.NoError(t, s.Start())
		t.Cleanup(s.Shutdown)
	}

	pending := func() int {
		info, err := inspector.GetQueueInfo(tasks.QueueMaintenance)
		if err != nil {
			return 0
		}
		return info.Pending
	}
	require.Eventually(t, func() bool { return pending() >= 3 }, 15*time.Second, 20*time.Millisecond)

	ticks := int(time.Since(start)/time.Second) + 1
	require.LessOrEqual(t, pending(), ticks, "more relay tasks than scheduler ticks")
}

func TestRejectsSubSecondInterval(t *testing.T) {
	redisOpt, err := asynq.ParseRedisURI(testenv.RedisURL(t, 7))
	require.NoError(t, err)
	_, err = scheduler.New(redisOpt, scheduler.Config{RelayInterval: 500 * time.Millisecond}, testenv.Logger(t))
	require.ErrorContains(t, err, "500ms")
}
