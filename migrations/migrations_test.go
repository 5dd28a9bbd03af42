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
