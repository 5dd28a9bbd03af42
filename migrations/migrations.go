// Package migrations embeds the versioned SQL schema and applies it with goose.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io"
	"path/filepath"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Provider returns a goose provider over the embedded SQL files for db. It
// holds a PostgreSQL advisory lock while it migrates, so several processes
// that start at once apply each migration once.
func Provider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("create migration provider: %w", err)
	}
	return p, nil
}

// Up applies every pending migration in order and returns the names of the
// files it applied, empty when the schema was current.
func Up(ctx context.Context, db *sql.DB) ([]string, error) {
	p, err := Provider(db)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, filepath.Base(r.Source.Path))
	}
	return applied, nil
}

// Down rolls back the most recent migration and returns the name of its
// file.
func Down(ctx context.Context, db *sql.DB) (string, error) {
	p, err := Provider(db)
	if err != nil {
		return "", err
	}
	r, err := p.Down(ctx)
	if err != nil {
		return "", fmt.Errorf("roll back migration: %w", err)
	}
	return filepath.Base(r.Source.Path), nil
}

// WriteStatus writes one line per migration with its version, state and
// the time it was applied.
func WriteStatus(ctx context.Context, db *sql.DB, w io.Writer) error {
	p, err := Provider(db)
	if err != nil {
		return err
	}
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	for _, s := range statuses {
		applied := "-"
		if !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		if _, err := fmt.Fprintf(w, "%05d  %-8s  %s  %s\n", s.Source.Version, s.State, applied, s.Source.Path); err != nil {
			return err
		}
	}
	return nil
}
