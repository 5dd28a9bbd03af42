// Package testenv gives each test package its own PostgreSQL database and
// Redis database index on the local servers, so that packages run in
// parallel without sharing state.
//
// OUTPOST_TEST_DATABASE_URL names the server's maintenance database
// (default postgres://root@127.0.0.1:5432/postgres?sslmode=disable),
// OUTPOST_TEST_DATABASE_PREFIX the prefix of the test databases' names
// (default outpost_test_), and OUTPOST_TEST_REDIS_ADDR the Redis server
// (default 127.0.0.1:6379). Two checkouts can run their tests at once when
// they use different prefixes and Redis servers.
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/migrations"
)

var (
	mu       sync.Mutex
	prepared = map[string]string{}
)

// AdminURL returns the URL of the maintenance database of the test server.
func AdminURL() string {
	if v := os.Getenv("OUTPOST_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://root@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisAddr returns the host:port of the test Redis server.
func RedisAddr() string {
	if v := os.Getenv("OUTPOST_TEST_REDIS_ADDR"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

// DatabaseURL returns the URL of database <prefix><name>, which the first
// call in a test binary drops, recreates and migrates.
func DatabaseURL(t testing.TB, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dsn, ok := prepared[name]; ok {
		return dsn
	}

	prefix := os.Getenv("OUTPOST_TEST_DATABASE_PREFIX")
	if prefix == "" {
		prefix = "outpost_test_"
	}
	dsn, err := database.WithDatabase(AdminURL(), prefix+name)
	if err != nil {
		t.Fatalf("build test database URL: %v", err)
	}
	ctx := context.Background()
	if err := database.Recreate(ctx, dsn); err != nil {
		t.Fatalf("recreate test database: %v", err)
	}
	db, err := database.Open(ctx, dsn, Logger(t))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	defer database.Close(db)
	sqlDB, _ := db.DB()
	if _, err := migrations.Up(ctx, sqlDB); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	prepared[name] = dsn
	return dsn
}

// DB returns a connection to the test database of name, closed when t
// ends.
func DB(t testing.TB, name string) *gorm.DB {
	t.Helper()
	db, err := database.Open(context.Background(), DatabaseURL(t, name), Logger(t))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}

// RedisURL flushes Redis database index and returns its URL. Each test
// package uses its own index.
func RedisURL(t testing.TB, index int) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: index})
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("flush Redis database %d at %s: %v", index, RedisAddr(), err)
	}
	return fmt.Sprintf("redis://%s/%d", RedisAddr(), index)
}

// Logger returns a logger for code under test. It discards everything
// unless OUTPOST_TEST_LOG=1, in which case it writes debug logs to stderr;
// it never writes to t, because background goroutines may log after the
// test has ended.
func Logger(testing.TB) *slog.Logger {
	if os.Getenv("OUTPOST_TEST_LOG") != "1" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
