package database_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/internal/testenv"
)

// syncBuffer is a log destination that the pool's goroutines may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestFailedQueryLogHidesParameters(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	db, err := database.Open(context.Background(), testenv.DatabaseURL(t, "database"), logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })

	const secret = "whsec_must_never_be_logged"
	err = db.Exec("INSERT INTO no_such_table (secret) VALUES (?)", secret).Error
	require.Error(t, err)

	require.Contains(t, logs.String(), "no_such_table", "the failed query was not logged")
	require.NotContains(t, logs.String(), secret)
}

func TestExpectedViolationsNotLogged(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	db, err := database.Open(context.Background(), testenv.DatabaseURL(t, "database"), logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })

	require.NoError(t, db.Exec("CREATE TEMP TABLE uniq (v text UNIQUE)").Error)
	require.NoError(t, db.Exec("INSERT INTO uniq VALUES ('a')").Error)
	require.Error(t, db.Exec("INSERT INTO uniq VALUES ('a')").Error)
	require.False(t, strings.Contains(logs.String(), "uniq"), "a unique violation was logged: %s", logs.String())
}

func TestRedactHidesPasswords(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2@db:5432/x",
		"postgres://u@db:5432/x?sslmode=disable&password=hunter2",
	} {
		require.NotContains(t, database.Redact(dsn), "hunter2", dsn)
	}
}

func TestFailedOpenLogsReadableError(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	// Port 1 on loopback refuses connections.
	_, err := database.Open(context.Background(), "postgres://root@127.0.0.1:1/outpost?sslmode=disable", logger)
	require.ErrorContains(t, err, "connection refused")
	require.Contains(t, logs.String(), "connection refused", "the log line names the cause")
	require.NotContains(t, logs.String(), "!ERROR", "the log line is valid, complete JSON")
	require.NotContains(t, logs.String(), "%v")
}
