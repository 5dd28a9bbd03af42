package migrations_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/migrations"
)

// TestAccessMigrationKeepsKeysAdmin rolls the schema back to before roles,
// stores a key, and migrates up again.
func TestAccessMigrationKeepsKeysAdmin(t *testing.T) {
	db := testenv.DB(t, "migrations")
	sqlDB, err := db.DB()
	require.NoError(t, err)
	ctx := context.Background()
	p, err := migrations.Provider(sqlDB)
	require.NoError(t, err)

	// Each test has its own database, which outlives one run under -count.
	_, err = sqlDB.ExecContext(ctx, `TRUNCATE api_keys CASCADE`)
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 3)
	require.NoError(t, err)
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO api_keys (id, name, prefix, hash, created_at)
		VALUES ('key_old', 'old', 'opk_oldoldol', '\x00', now())`)
	require.NoError(t, err)
	_, err = p.Up(ctx)
	require.NoError(t, err)

	var role string
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT role FROM api_keys WHERE id = 'key_old'`).Scan(&role))
	require.Equal(t, "admin", role)

	_, err = sqlDB.ExecContext(ctx, `INSERT INTO api_keys (id, name, prefix, hash, created_at)
		VALUES ('key_new', 'new', 'opk_newnewne', '\x00', now())`)
	require.Error(t, err, "a new key must name its role")
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO api_keys (id, name, prefix, hash, created_at, role)
		VALUES ('key_bad', 'bad', 'opk_badbadba', '\x00', now(), 'owner')`)
	require.Error(t, err, "the database rejects unknown roles")
}

// TestSessionsMigrationKeepsActors rolls the schema back to before
// sessions, stores an audit entry and an idempotency key of an API key, and
// migrates up and down again.
func TestSessionsMigrationKeepsActors(t *testing.T) {
	db := testenv.DB(t, "migrations_sessions")
	sqlDB, err := db.DB()
	require.NoError(t, err)
	ctx := context.Background()
	p, err := migrations.Provider(sqlDB)
	require.NoError(t, err)

	// Each test has its own database, which outlives one run under -count.
	_, err = sqlDB.ExecContext(ctx, `TRUNCATE audit_log, idempotency_keys, sessions, agents, api_keys CASCADE`)
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 6)
	require.NoError(t, err)
	for _, stmt := range []string{
		`INSERT INTO api_keys (id, name, prefix, hash, created_at, role) VALUES ('key_a', 'a', 'opk_aaaaaaaa', '\x00', now(), 'admin')`,
		`INSERT INTO agents (id, name, email, active, created_at, updated_at) VALUES ('agt_a', 'A', 'a@example.com', true, now(), now())`,
		`INSERT INTO audit_log (id, api_key_id, action, resource_type, resource_id, created_at) VALUES ('aud_a', 'key_a', 'create-agent', 'agent', 'agt_a', now())`,
		`INSERT INTO idempotency_keys (api_key_id, key, request_hash, created_at, expires_at) VALUES ('key_a', 'k1', '\x00', now(), now())`,
	} {
		_, err = sqlDB.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	_, err = p.Up(ctx)
	require.NoError(t, err)

	var actorType, actorID string
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT actor_type, actor_id FROM audit_log WHERE id = 'aud_a'`).Scan(&actorType, &actorID))
	require.Equal(t, "api_key", actorType)
	require.Equal(t, "key_a", actorID)
	var principal string
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT principal_id FROM idempotency_keys WHERE key = 'k1'`).Scan(&principal))
	require.Equal(t, "key_a", principal)
	var role string
	var canSignIn bool
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT role, password_hash IS NOT NULL FROM agents WHERE id = 'agt_a'`).Scan(&role, &canSignIn))
	require.Equal(t, "agent", role, "existing agents get the agent role")
	require.False(t, canSignIn, "and no password")

	_, err = sqlDB.ExecContext(ctx, `INSERT INTO audit_log (id, actor_type, actor_id, action, resource_type, resource_id, created_at)
		VALUES ('aud_b', 'operator', 'x', 'create-agent', 'agent', 'agt_a', now())`)
	require.Error(t, err, "the database rejects unknown actor types")
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO audit_log (id, actor_type, actor_id, action, resource_type, resource_id, created_at)
		VALUES ('aud_c', 'cli', 'root', 'create-agent', 'agent', 'agt_a', now())`)
	require.NoError(t, err)
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO sessions (id, token_hash, agent_id, created_at, last_seen_at, expires_at)
		VALUES ('ses_a', '\x01', 'agt_a', now(), now(), now())`)
	require.NoError(t, err)

	_, err = p.DownTo(ctx, 6)
	require.NoError(t, err, "the down migration drops what the older schema cannot hold")
	var apiKeyID string
	require.NoError(t, sqlDB.QueryRowContext(ctx, `SELECT api_key_id FROM audit_log WHERE id = 'aud_a'`).Scan(&apiKeyID))
	require.Equal(t, "key_a", apiKeyID)
	_, err = p.Up(ctx)
	require.NoError(t, err)
}

// TestEmailNormalizationMigration stores agent emails typed with combining
// characters before the migration that puts them in form C.
func TestEmailNormalizationMigration(t *testing.T) {
	db := testenv.DB(t, "migrations_nfc")
	sqlDB, err := db.DB()
	require.NoError(t, err)
	ctx := context.Background()
	p, err := migrations.Provider(sqlDB)
	require.NoError(t, err)

	// Each test has its own database, which outlives one run under -count.
	_, err = sqlDB.ExecContext(ctx, `TRUNCATE agents CASCADE`)
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 8)
	require.NoError(t, err)
	for _, stmt := range []string{
		// "é" as e and a combining acute accent.
		"INSERT INTO agents (id, name, email, active, created_at, updated_at) VALUES ('agt_a', 'A', U&'rene\\0301@example.com', true, now(), now())",
		// The same address twice, in both forms: the second keeps its form.
		"INSERT INTO agents (id, name, email, active, created_at, updated_at) VALUES ('agt_b', 'B', U&'zoe\\0308@example.com', true, now(), now())",
		"INSERT INTO agents (id, name, email, active, created_at, updated_at) VALUES ('agt_c', 'C', U&'zo\\00EB@example.com', true, now(), now())",
	} {
		_, err = sqlDB.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	_, err = p.Up(ctx)
	require.NoError(t, err)

	var email string
	require.NoError(t, sqlDB.QueryRowContext(ctx, "SELECT email FROM agents WHERE id = 'agt_a'").Scan(&email))
	require.Equal(t, "ren\u00e9@example.com", email)
	require.NoError(t, sqlDB.QueryRowContext(ctx, "SELECT email FROM agents WHERE id = 'agt_b'").Scan(&email))
	require.Equal(t, "zoe\u0308@example.com", email, "a rewrite that would collide is skipped")
}
