package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hibiken/asynq"
)

// AsynqLogger adapts slog to asynq's printf-style logger interface, so that
// asynq's own messages share the process's log format.
type AsynqLogger struct {
	logger *slog.Logger
}

var _ asynq.Logger = AsynqLogger{}

// NewAsynqLogger returns an asynq logger that writes to logger with the
// attribute component=asynq.
func NewAsynqLogger(logger *slog.Logger) AsynqLogger {
	return AsynqLogger{logger: logger.With(slog.String("component", "asynq"))}
}

// Debug logs at debug level.
func (l AsynqLogger) Debug(args ...any) { l.log(slog.LevelDebug, args) }

// Info logs at info level.
func (l AsynqLogger) Info(args ...any) { l.log(slog.LevelInfo, args) }

// Warn logs at warn level.
func (l AsynqLogger) Warn(args ...any) { l.log(slog.LevelWarn, args) }

// Error logs at error level.
func (l AsynqLogger) Error(args ...any) { l.log(slog.LevelError, args) }

// Fatal logs at error level and exits, as asynq expects of Fatal.
func (l AsynqLogger) Fatal(args ...any) {
	l.log(slog.LevelError, args)
	os.Exit(1)
}

func (l AsynqLogger) log(level slog.Level, args []any) {
	l.logger.Log(context.Background(), level, fmt.Sprint(args...))
}
