package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// passwordEnv is the environment variable from which agent commands read a
// password before they fall back to standard input.
const passwordEnv = "OUTPOST_AGENT_PASSWORD"

const agentUsage = "usage: outpost agent create --email EMAIL [--name NAME] [--role admin|agent|viewer] | " +
	"agent set-password --email EMAIL | agent list"

// runAgent runs "agent create", "agent set-password" and "agent list".
// Passwords come from OUTPOST_AGENT_PASSWORD or standard input, because a
// flag would show in the process list and the shell history.
func runAgent(ctx context.Context, cfg Config, logger *slog.Logger, args []string, getenv func(string) string,
	stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(agentUsage)
	}
	db, err := database.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer database.Close(db)
	cmd := agentCommand{db: db, logger: logger, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}

	switch args[0] {
	case "create":
		return cmd.create(ctx, args[1:])
	case "set-password":
		return cmd.setPassword(ctx, args[1:])
	case "list":
		if len(args) > 1 {
			return fmt.Errorf("agent list takes no arguments, got %q", args[1:])
		}
		return cmd.list(ctx)
	default:
		return fmt.Errorf("unknown agent command %q; %s", args[0], agentUsage)
	}
}

type agentCommand struct {
	db     *gorm.DB
	logger *slog.Logger
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (c agentCommand) create(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent create", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	email := fs.String("email", "", "email address with which the agent signs in (required)")
	name := fs.String("name", "", "the agent's name (default: the part of the email before @)")
	role := fs.String("role", string(models.RoleAgent), "what the agent may do: admin, agent or viewer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*email) == "" {
		return errors.New("agent create: --email is required, for example --email dana@support.example")
	}
	if addr, err := mail.ParseAddress(*email); err != nil || addr.Address != strings.TrimSpace(*email) {
		return fmt.Errorf("agent create: invalid --email %q; use a plain address such as dana@support.example", *email)
	}
	if !models.Role(*role).Valid() {
		return fmt.Errorf("agent create: invalid --role %q; use admin, agent or viewer", *role)
	}
	if *name == "" {
		*name, _, _ = strings.Cut(strings.TrimSpace(*email), "@")
	}

	password, err := c.readPassword()
	if err != nil {
		return err
	}
	if err := auth.ValidatePassword("password", password); err != nil {
		return cliError(err)
	}
	hash := auth.HashPassword(password)

	svc := helpdesk.NewService(c.db, nil, nil)
	ctx = cliChange(ctx, "create-agent", "agent", "", []string{"email", "name", "password", "role"})
	agent, err := svc.CreateAgent(ctx, helpdesk.NewAgent{Name: *name, Email: *email, Role: models.Role(*role), PasswordHash: &hash})
	if err != nil {
		return fmt.Errorf("agent create: %w", cliError(err))
	}
	c.logger.Info("agent created", slog.String("agent_id", agent.ID), slog.String("role", string(agent.Role)))
	fmt.Fprintf(c.stdout, "Created agent %s (%s, role %s). They can sign in at /signin.\n", agent.ID, agent.Email, agent.Role)
	return nil
}

func (c agentCommand) setPassword(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent set-password", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	email := fs.String("email", "", "email address of the agent (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*email) == "" {
		return errors.New("agent set-password: --email is required")
	}
	var agent models.Agent
	err := c.db.WithContext(ctx).Take(&agent, "lower(email) = lower(?)", models.NormalizeEmail(*email)).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("agent set-password: no agent has the email address %s (see outpost agent list)", *email)
	}
	if err != nil {
		return fmt.Errorf("%w (has `outpost migrate up` run?)", err)
	}
	password, err := c.readPassword()
	if err != nil {
		return err
	}
	sessions := auth.NewSessions(c.db, auth.Config{}, nil)
	ctx = cliChange(ctx, "set-agent-password", "agent", agent.ID, []string{"password"})
	if _, err := sessions.SetPassword(ctx, agent.ID, password, "password", ""); err != nil {
		return fmt.Errorf("agent set-password: %w", cliError(err))
	}
	c.logger.Info("agent password set", slog.String("agent_id", agent.ID))
	fmt.Fprintf(c.stdout, "Set the password of agent %s (%s) and ended their sessions.\n", agent.ID, agent.Email)
	return nil
}

func (c agentCommand) list(ctx context.Context) error {
	svc := helpdesk.NewService(c.db, nil, nil)
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tEMAIL\tNAME\tROLE\tACTIVE\tCAN SIGN IN\tCREATED")
	cursor := ""
	for {
		rows, next, err := svc.ListAgents(ctx, false, paging.Params{Limit: 100, Cursor: cursor})
		if err != nil {
			return fmt.Errorf("%w (has `outpost migrate up` run?)", err)
		}
		for _, a := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%t\t%s\n", a.ID, a.Email, a.Name, a.Role, a.Active, a.CanSignIn,
				a.CreatedAt.Format(time.RFC3339))
		}
		if next == nil {
			return w.Flush()
		}
		cursor = *next
	}
}

// parseFlags parses args with fs and rejects arguments left after the
// flags. A request for help is not an error: the flag package has printed
// the usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// errHelpShown ends a command whose usage was printed on request; main
// exits with status 0 for it.
var errHelpShown = errors.New("help shown")

// readPassword returns OUTPOST_AGENT_PASSWORD when it is set. Otherwise it
// prompts twice without echo when standard input is a terminal, and reads
// one line when it is not.
func (c agentCommand) readPassword() (string, error) {
	if p := c.getenv(passwordEnv); p != "" {
		return p, nil
	}
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(c.stderr, "Repeat the password: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords differ; run the command again")
		}
		return string(first), nil
	}
	if c.stdin == nil {
		return "", fmt.Errorf("no password: set %s or pipe the password to standard input", passwordEnv)
	}
	line, err := bufio.NewReader(io.LimitReader(c.stdin, auth.MaxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", fmt.Errorf("no password: set %s or pipe the password to standard input", passwordEnv)
	}
	return line, nil
}

// cliChange returns ctx carrying the audit entry of a change made from the
// command line, under the operating-system user who ran it. The service
// writes the entry in the change's transaction; resourceID may be empty
// for a create.
func cliChange(ctx context.Context, action, resourceType, resourceID string, fields []string) context.Context {
	return audit.WithChange(ctx, models.AuditEntry{
		ActorType:    models.ActorCLI,
		ActorID:      osUser(),
		Action:       action,
		ResourceType: resourceType,
		ResourceID:   resourceID,
		Fields:       fields,
	})
}

// osUser names the operating-system user running the command.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// cliError rewrites a field error for the command line, where there is no
// request body to locate it in.
func cliError(err error) error {
	var fe *outpost.FieldError
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	var ce *outpost.ConflictError
	if errors.As(err, &ce) {
		return errors.New(ce.Message)
	}
	return err
}
