// Package database opens Outpost's PostgreSQL database with gorm and holds
// the few administrative statements that only PostgreSQL understands.
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open connects to the database at dsn and checks the connection. Queries
// slower than 500 ms are logged as warnings, with their parameters left
// out, so that no secret reaches the log.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*gorm.DB, error) {
	dialector := postgres.New(postgres.Config{
		DSN:          dsn,
		OptionOpenDB: []stdlib.OptionOpenDB{stdlib.OptionAfterConnect(scanTimesInUTC)},
	})
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger: quietLogger{logger.NewSlogLogger(log, logger.Config{
			SlowThreshold:             500 * time.Millisecond,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true,
			LogLevel:                  logger.Warn,
		})},
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(dsn), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(dsn), err)
	}
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(10)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
			return nil, fmt.Errorf("connect to database %s: %w; create it with createdb, or run `outpost dev`, which creates it", Redact(dsn), err)
		}
		return nil, fmt.Errorf("connect to database %s: %w", Redact(dsn), err)
	}
	return db, nil
}

// quietLogger leaves out the errors that the domain code expects and turns
// into 409 or 422 responses: unique and foreign-key violations.
type quietLogger struct {
	logger.Interface
}

func (l quietLogger) LogMode(level logger.LogLevel) logger.Interface {
	return quietLogger{l.Interface.LogMode(level)}
}

// ParamsFilter forwards to the wrapped logger, which drops the parameter
// values, so that secrets and message bodies stay out of logged SQL. gorm
// calls it only on loggers that implement gorm.ParamsFilter, which embedding
// does not pass on.
func (l quietLogger) ParamsFilter(ctx context.Context, sql string, params ...any) (string, []any) {
	if f, ok := l.Interface.(gorm.ParamsFilter); ok {
		return f.ParamsFilter(ctx, sql, params...)
	}
	return sql, nil
}

// Info, Warn and Error format msg with data before logging, because gorm's
// slog logger logs data as an attribute that JSON cannot always encode, as
// with the connection error of a failed open.
func (l quietLogger) Info(ctx context.Context, msg string, data ...any) {
	l.Interface.Info(ctx, fmt.Sprintf(msg, data...))
}

func (l quietLogger) Warn(ctx context.Context, msg string, data ...any) {
	l.Interface.Warn(ctx, fmt.Sprintf(msg, data...))
}

func (l quietLogger) Error(ctx context.Context, msg string, data ...any) {
	l.Interface.Error(ctx, fmt.Sprintf(msg, data...))
}

func (l quietLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	var pgErr *pgconn.PgError
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "23503") {
		err = nil
	}
	l.Interface.Trace(ctx, begin, fc, err)
}

// scanTimesInUTC makes conn return timestamptz values in UTC rather than
// in the process's local zone, so that every timestamp Outpost serializes
// is in UTC whatever the server's TZ.
func scanTimesInUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	return nil
}

// Close closes the connection pool of db.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// EnsureExists creates the database that dsn names unless it exists,
// connecting to the "postgres" maintenance database of the same server.
func EnsureExists(ctx context.Context, dsn string) error {
	name, adminDSN, err := splitDatabase(dsn)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect to maintenance database %s: %w", Redact(adminDSN), err)
	}
	defer conn.Close(ctx)

	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// Recreate drops the database that dsn names, with any open connections,
// and creates it empty. Tests use it for a clean database per package.
func Recreate(ctx context.Context, dsn string) error {
	name, adminDSN, err := splitDatabase(dsn)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect to maintenance database %s: %w", Redact(adminDSN), err)
	}
	defer conn.Close(ctx)

	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %q: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// WithDatabase returns dsn with its database name replaced by name.
func WithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("database URL must look like postgres://user@host:5432/name")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Redact returns dsn with its password replaced, in the user information
// and in a password query parameter, for logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable database URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func splitDatabase(dsn string) (name, adminDSN string, err error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", fmt.Errorf("database URL must look like postgres://user@host:5432/name")
	}
	name = strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", "", fmt.Errorf("database URL %s names no database", Redact(dsn))
	}
	adminDSN, err = WithDatabase(dsn, "postgres")
	return name, adminDSN, err
}
