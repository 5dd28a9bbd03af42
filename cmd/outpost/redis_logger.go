package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// redisLogger sends go-redis's own messages, such as failed dials while
// Redis is down, to slog at warn level, at most one per interval, with the
// count of the messages it dropped in between.
type redisLogger struct {
	logger   *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func newRedisLogger(logger *slog.Logger) *redisLogger {
	return &redisLogger{logger: logger.With(slog.String("component", "go-redis")), interval: 10 * time.Second}
}

// Printf implements go-redis's logging interface.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < l.interval {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.last, l.dropped = now, 0
	l.mu.Unlock()

	l.logger.WarnContext(ctx, fmt.Sprintf(format, v...), slog.Int("dropped_since_last", dropped))
}
