package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

func TestAgentCommands(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OUTPOST_DATABASE_URL": testenv.DatabaseURL(t, "e2e_agent_cli")}
	getenv := func(k string) string { return env[k] }
	var logs bytes.Buffer
	cli := func(stdin string, args ...string) (string, error) {
		var stdout bytes.Buffer
		err := run(context.Background(), args, getenv, strings.NewReader(stdin), &stdout, &logs)
		return stdout.String(), err
	}
	db := testenv.DB(t, "e2e_agent_cli")
	sessions := auth.NewSessions(db, auth.Config{}, nil)
	const password = "a long admin passphrase"
	// The database outlives one run under -count, so the addresses differ
	// between runs.
	domain := strings.ToLower(rand.Text()[:8]) + ".example"

	out, err := cli(password+"\n", "agent", "create", "--email", "Root@"+domain, "--role", "admin")
	require.NoError(t, err)
	require.Contains(t, out, "role admin")
	cur, _, err := sessions.SignIn(context.Background(), "root@"+domain, password, auth.Client{})
	require.NoError(t, err, "the password read from standard input signs in")
	require.Equal(t, models.RoleAdmin, cur.Agent.Role)
	require.Equal(t, "Root", cur.Agent.Name, "the name defaults to the email's local part")

	env["OUTPOST_AGENT_PASSWORD"] = "from the environment too"
	_, err = cli("", "agent", "create", "--email", "viewer@"+domain, "--name", "Vera", "--role", "viewer")
	require.NoError(t, err)
	_, _, err = sessions.SignIn(context.Background(), "viewer@"+domain, "from the environment too", auth.Client{})
	require.NoError(t, err, "OUTPOST_AGENT_PASSWORD is read first")
	delete(env, "OUTPOST_AGENT_PASSWORD")

	_, err = cli("short\n", "agent", "create", "--email", "short@"+domain)
	require.ErrorContains(t, err, "at least 12 characters")
	_, err = cli("", "agent", "create", "--email", "empty@"+domain)
	require.ErrorContains(t, err, "OUTPOST_AGENT_PASSWORD")
	_, err = cli(password+"\n", "agent", "create", "--email", "ROOT@"+domain)
	require.ErrorContains(t, err, "another agent already has this email address")
	_, err = cli(password+"\n", "agent", "create", "--email", "Dana <dana@"+domain+">")
	require.ErrorContains(t, err, "invalid --email")
	_, err = cli(password+"\n", "agent", "create", "--email", "not-an-address")
	require.ErrorContains(t, err, "invalid --email")
	_, err = cli(password+"\n", "agent", "create", "--email", "x@"+domain, "--role", "owner")
	require.ErrorContains(t, err, `invalid --role "owner"`)
	_, err = cli(password+"\n", "agent", "create", "--password", password)
	require.ErrorContains(t, err, "flag provided but not defined: -password", "there is no password flag")

	const newPassword = "the replacement passphrase"
	_, token, err := sessions.SignIn(context.Background(), "root@"+domain, password, auth.Client{})
	require.NoError(t, err)
	out, err = cli(newPassword+"\r\n", "agent", "set-password", "--email", "root@"+domain)
	require.NoError(t, err)
	require.Contains(t, out, "ended their sessions")
	_, err = sessions.Authenticate(context.Background(), token)
	require.ErrorIs(t, err, auth.ErrInvalidSession, "setting a password ends the agent's sessions")
	_, _, err = sessions.SignIn(context.Background(), "root@"+domain, newPassword, auth.Client{})
	require.NoError(t, err, "a CRLF line ending is not part of the password")
	_, err = cli(newPassword+"\n", "agent", "set-password", "--email", "nobody@"+domain)
	require.ErrorContains(t, err, "no agent has the email address")

	_, err = cli("", "agent", "list", "--json")
	require.ErrorContains(t, err, "agent list takes no arguments")
	_, err = cli("", "apikey", "list", "extra")
	require.ErrorContains(t, err, "apikey list takes no arguments")
	_, err = cli("", "agent", "create", "--email", "x@"+domain, "stray")
	require.ErrorContains(t, err, `unexpected arguments ["stray"]`)
	_, err = cli("", "agent", "create", "--help")
	require.ErrorIs(t, err, errHelpShown, "help is printed, and main exits with status 0")
	require.Contains(t, logs.String(), "-email", "the usage lists the flags")

	out, err = cli("", "agent", "list")
	require.NoError(t, err)
	require.Contains(t, out, "Root@"+domain)
	require.Contains(t, out, "viewer@"+domain)
	require.NotContains(t, out, "argon2")

	var entries []models.AuditEntry
	require.NoError(t, db.Where("resource_id IN (SELECT id FROM agents WHERE email LIKE ?)", "%@"+domain).
		Order("created_at, id").Find(&entries).Error)
	require.Len(t, entries, 3, "two creates and a password change")
	for _, e := range entries {
		require.Equal(t, models.ActorCLI, e.ActorType)
		require.NotEmpty(t, e.ActorID)
		require.Equal(t, "agent", e.ResourceType)
	}
	require.Equal(t, "set-agent-password", entries[2].Action)
	require.Equal(t, cur.Agent.ID, entries[2].ResourceID)

	for _, secret := range []string{password, newPassword, "from the environment too"} {
		require.NotContains(t, logs.String(), secret, "a password reached the log")
	}
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OUTPOST_DATABASE_URL": testenv.DatabaseURL(t, "e2e_migrate")}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) string {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, getenv, nil, &stdout, &stderr)
		require.NoError(t, err, stderr.String())
		return stdout.String()
	}

	require.Contains(t, cli("migrate", "up"), "no migration applied", "testenv migrated the database already")
	out := cli("migrate", "down")
	require.Regexp(t, `^Rolled back \d{5}_\w+\.sql\n$`, out)
	name := strings.TrimSpace(strings.TrimPrefix(out, "Rolled back "))
	require.Equal(t, "Applied "+name+"\n", cli("migrate", "up"), "up applies what down rolled back")
	require.Contains(t, cli("migrate", "status"), name)
}
