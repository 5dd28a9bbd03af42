package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/migrations"
	"github.com/outposthq/outpost/models"
)

// runMigrate runs "migrate up|down|status".
func runMigrate(ctx context.Context, cfg Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: outpost migrate up|down|status")
	}
	db, err := database.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer database.Close(db)
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}

	switch args[0] {
	case "up":
		applied, err := migrations.Up(ctx, sqlDB)
		if err != nil {
			return err
		}
		logger.Info("migrations applied", slog.Int("count", len(applied)), slog.Any("migrations", applied))
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "The schema is current; no migration applied.")
		}
		for _, name := range applied {
			fmt.Fprintln(stdout, "Applied", name)
		}
		return nil
	case "down":
		name, err := migrations.Down(ctx, sqlDB)
		if err != nil {
			return err
		}
		logger.Info("migration rolled back", slog.String("migration", name))
		fmt.Fprintln(stdout, "Rolled back", name)
		return nil
	case "status":
		return migrations.WriteStatus(ctx, sqlDB, stdout)
	default:
		return fmt.Errorf("unknown migrate command %q; use up, down or status", args[0])
	}
}

// runAPIKey runs "apikey create --name NAME [--role ROLE]", "apikey list" and "apikey
// revoke KEY_ID". A new key is the last line of stdout and is never logged.
func runAPIKey(ctx context.Context, cfg Config, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: outpost apikey create --name NAME [--role admin|agent|viewer] | apikey list | apikey revoke KEY_ID"
	if len(args) == 0 {
		return errors.New(usage)
	}
	db, err := database.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer database.Close(db)
	keys := apikeys.New(db, nil)

	switch args[0] {
	case "create":
		_, err := createAPIKey(cliChange(ctx, "create-api-key", "api_key", "", []string{"name", "role"}),
			keys, logger, args[1:], stdout, stderr)
		return err
	case "list":
		if len(args) > 1 {
			return fmt.Errorf("apikey list takes no arguments, got %q", args[1:])
		}
		list, err := keys.List(ctx)
		if err != nil {
			return fmt.Errorf("%w (has `outpost migrate up` run?)", err)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tPREFIX\tNAME\tROLE\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
		for _, k := range list {
			fmt.Fprintf(w, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Name, k.Role,
				k.CreatedAt.Format(time.RFC3339), formatTime(k.ExpiresAt), formatTime(k.LastUsedAt), formatTime(k.RevokedAt))
		}
		return w.Flush()
	case "revoke":
		if len(args) != 2 {
			return errors.New("usage: outpost apikey revoke KEY_ID (see outpost apikey list)")
		}
		key, revoked, err := keys.Revoke(cliChange(ctx, "revoke-api-key", "api_key", args[1], []string{}), args[1])
		if err != nil {
			return err
		}
		if !revoked {
			fmt.Fprintf(stdout, "API key %s (%s) was already revoked at %s.\n", key.ID, key.Name, formatTime(key.RevokedAt))
			return nil
		}
		logger.Info("API key revoked", slog.String("key_id", key.ID), slog.String("name", key.Name))
		fmt.Fprintf(stdout, "Revoked API key %s (%s).\n", key.ID, key.Name)
		return nil
	default:
		return fmt.Errorf("unknown apikey command %q; %s", args[0], usage)
	}
}

func createAPIKey(ctx context.Context, keys *apikeys.Keys, logger *slog.Logger, args []string, stdout, stderr io.Writer) (models.APIKey, error) {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "name of the integration that will use the key (required)")
	role := fs.String("role", string(models.RoleAdmin), "what the key may do: admin, agent or viewer")
	if err := parseFlags(fs, args); err != nil {
		return models.APIKey{}, err
	}
	if *name == "" {
		return models.APIKey{}, fmt.Errorf("apikey create: --name is required, for example --name zapier")
	}
	if !models.Role(*role).Valid() {
		return models.APIKey{}, fmt.Errorf("apikey create: invalid --role %q; use admin, agent or viewer", *role)
	}
	key, secret, err := keys.Create(ctx, apikeys.NewKey{Name: *name, Role: models.Role(*role)})
	if err != nil {
		return models.APIKey{}, fmt.Errorf("%w (has `outpost migrate up` run?)", err)
	}
	logger.Info("API key created", slog.String("key_id", key.ID), slog.String("name", key.Name), slog.String("role", string(key.Role)))
	fmt.Fprintf(stdout, "Created API key %s (%s, role %s). Store it now; it is not shown again:\n%s\n", key.ID, key.Name, key.Role, secret)
	return key, nil
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// runSLA runs "sla backfill", which computes the SLA state of the open and
// pending tickets that have none, such as tickets written before the SLA
// migration. Their breaches and warnings that have passed are emitted.
func runSLA(ctx context.Context, cfg Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "backfill" {
		return fmt.Errorf("usage: outpost sla backfill")
	}
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	n, err := a.slaEngine().Backfill(ctx, 500)
	if err != nil {
		return fmt.Errorf("backfill SLA state after %d tickets: %w", n, err)
	}
	logger.Info("SLA state backfilled", slog.Int("tickets", n))
	fmt.Fprintf(stdout, "Computed the SLA state of %d tickets.\n", n)
	return nil
}
