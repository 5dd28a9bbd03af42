// Command outpost runs Outpost's processes: the HTTP API, the background
// worker, the periodic-task scheduler, or all three at once for development,
// plus the database migrations and API-key administration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

const usage = `Usage: outpost <command> [arguments]

Commands:
  api                          serve the HTTP API
  worker                       run background tasks (webhook delivery, outbox relay, SLA detection)
  scheduler                    enqueue periodic tasks
  dev                          create the database if needed, migrate, then run api, worker and scheduler in one process
  migrate up|down|status       apply, roll back or list database migrations
  apikey create --name NAME [--role admin|agent|viewer]
                               create an API key (admin by default) and print it once, as the last line
  apikey list                  list API keys: ID, prefix, name, role, creation, expiry, last use, revocation
  apikey revoke KEY_ID         revoke an API key at once
  agent create --email EMAIL [--name NAME] [--role admin|agent|viewer]
                               create an agent who can sign in; the password is read from
                               OUTPOST_AGENT_PASSWORD or standard input, never from a flag
  agent set-password --email EMAIL
                               set an agent's password the same way and end their sessions
  agent list                   list agents with their role and whether they can sign in
  sla backfill                 compute the SLA state of open and pending tickets that have none

Configuration comes from OUTPOST_* environment variables; see the README.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errHelpShown) {
		return
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "outpost:", err)
		}
		os.Exit(1)
	}
}

// run executes the command in args. It returns when the command ends or, for
// the long-running roles, after ctx is canceled and the role shut down.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	redis.SetLogger(newRedisLogger(logger))
	if cmd == "dev" {
		cfg = applyDevDefaults(cfg, getenv, logger)
	}

	switch cmd {
	case "api", "worker", "scheduler", "dev":
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, usage)
			return nil
		}
		if len(args) > 0 {
			return fmt.Errorf("%s takes no arguments, got %q", cmd, args)
		}
		return runRoles(ctx, cfg, logger, cmd, nil)
	case "migrate":
		return runMigrate(ctx, cfg, logger, args, stdout)
	case "apikey":
		return runAPIKey(ctx, cfg, logger, args, stdout, stderr)
	case "agent":
		return runAgent(ctx, cfg, logger, args, getenv, stdin, stdout, stderr)
	case "sla":
		return runSLA(ctx, cfg, logger, args, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// applyDevDefaults returns cfg with the defaults of `outpost dev` for the
// variables that getenv leaves unset, and logs a warning for each one.
func applyDevDefaults(cfg Config, getenv func(string) string, logger *slog.Logger) Config {
	if getenv("OUTPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS") == "" {
		// Development receivers usually run on the same machine.
		cfg.Webhooks.AllowPrivateNetworks = true
		logger.Warn("dev lets webhook endpoints use loopback and private addresses; " +
			"set OUTPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS=false to keep the SSRF guard on")
	}
	if getenv("OUTPOST_SESSION_COOKIE_SECURE") == "" {
		// Development servers usually listen on plain HTTP, over which
		// browsers send a Secure cookie only to localhost and loopback
		// addresses.
		cfg.SecureCookies = false
		logger.Warn("dev sends the session cookie without the Secure attribute, for plain HTTP; " +
			"set OUTPOST_SESSION_COOKIE_SECURE=true when serving over HTTPS")
	}
	return cfg
}
