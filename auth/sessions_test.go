package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

// newAgent stores an active agent with passwordHash and returns it.
func newAgent(t *testing.T, s *Sessions, passwordHash string) models.Agent {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	agent := models.Agent{
		ID:           models.NewID(models.PrefixAgent),
		Name:         "Race",
		Email:        models.NewID("race") + "@support.example",
		Active:       true,
		Role:         models.RoleAgent,
		PasswordHash: &passwordHash,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	require.NoError(t, s.db.Create(&agent).Error)
	return agent
}

// weakHash returns an argon2id hash of password with less memory and fewer
// passes than new hashes get, as stored before the parameters were raised.
func weakHash(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 1, 8*1024, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

const (
	oldPassword = "the old passphrase"
	newPassword = "the new passphrase"
)

func TestSignInRacingPasswordChange(t *testing.T) {
	t.Parallel()
	s := NewSessions(testenv.DB(t, "auth"), Config{}, nil)
	agent := newAgent(t, s, HashPassword(oldPassword))
	ctx := context.Background()

	s.afterVerify = func() {
		_, err := s.SetPassword(ctx, agent.ID, newPassword, "password", "")
		require.NoError(t, err)
	}
	_, _, err := s.SignIn(ctx, agent.Email, oldPassword, Client{})
	require.ErrorIs(t, err, ErrInvalidCredentials, "a sign-in with the replaced password starts no session")

	var sessions int64
	require.NoError(t, s.db.Model(&models.Session{}).Where("agent_id = ?", agent.ID).Count(&sessions).Error)
	require.Zero(t, sessions)
}

func TestSignInRehashKeepsPasswordChange(t *testing.T) {
	t.Parallel()
	s := NewSessions(testenv.DB(t, "auth"), Config{}, nil)
	weak := weakHash(oldPassword)
	agent := newAgent(t, s, weak)
	ctx := context.Background()

	s.afterVerify = func() {
		_, err := s.SetPassword(ctx, agent.ID, newPassword, "password", "")
		require.NoError(t, err)
	}
	_, _, err := s.SignIn(ctx, agent.Email, oldPassword, Client{})
	require.ErrorIs(t, err, ErrInvalidCredentials)

	s.afterVerify = nil
	_, _, err = s.SignIn(ctx, agent.Email, oldPassword, Client{})
	require.ErrorIs(t, err, ErrInvalidCredentials, "the rehash did not restore the old password")
	_, _, err = s.SignIn(ctx, agent.Email, newPassword, Client{})
	require.NoError(t, err)
}

func TestSignInRacingDeactivation(t *testing.T) {
	t.Parallel()
	s := NewSessions(testenv.DB(t, "auth"), Config{}, nil)
	agent := newAgent(t, s, HashPassword(oldPassword))
	ctx := context.Background()

	s.afterVerify = func() {
		require.NoError(t, s.db.Model(&models.Agent{}).Where("id = ?", agent.ID).Update("active", false).Error)
	}
	_, _, err := s.SignIn(ctx, agent.Email, oldPassword, Client{})
	require.ErrorIs(t, err, ErrInvalidCredentials)
}

func TestSignInRehashesWeakHash(t *testing.T) {
	t.Parallel()
	s := NewSessions(testenv.DB(t, "auth"), Config{}, nil)
	weak := weakHash(oldPassword)
	agent := newAgent(t, s, weak)

	_, _, err := s.SignIn(context.Background(), agent.Email, oldPassword, Client{})
	require.NoError(t, err)
	var stored models.Agent
	require.NoError(t, s.db.Take(&stored, "id = ?", agent.ID).Error)
	require.Contains(t, *stored.PasswordHash, "m=19456,t=2,p=1", "the hash is upgraded at sign-in")
	ok, _, err := VerifyPassword(*stored.PasswordHash, oldPassword)
	require.NoError(t, err)
	require.True(t, ok)
}

func TestShortIdleTimeoutKeepsActiveSession(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := NewSessions(testenv.DB(t, "auth"), Config{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour},
		func() time.Time { return now })
	agent := newAgent(t, s, HashPassword(oldPassword))
	_, token, err := s.SignIn(context.Background(), agent.Email, oldPassword, Client{})
	require.NoError(t, err)

	for i := range 5 {
		now = now.Add(59 * time.Second)
		_, err := s.Authenticate(context.Background(), token)
		require.NoError(t, err, "request %d, 59 s after the one before", i)
	}
	now = now.Add(61 * time.Second)
	_, err = s.Authenticate(context.Background(), token)
	require.ErrorIs(t, err, ErrInvalidSession)
}

func TestAddressKeyGroupsIPv6(t *testing.T) {
	t.Parallel()
	require.Equal(t, addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:2:ffff::9"), "one /64")
	require.NotEqual(t, addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:3::1"))
	require.Equal(t, "signin:address:203.0.113.7", addressKey("203.0.113.7"))
}

func TestChangePasswordAfterSessionEnded(t *testing.T) {
	t.Parallel()
	s := NewSessions(testenv.DB(t, "auth"), Config{}, nil)
	agent := newAgent(t, s, HashPassword(oldPassword))
	ctx := context.Background()
	_, token, err := s.SignIn(ctx, agent.Email, oldPassword, Client{})
	require.NoError(t, err)
	cur, err := s.Authenticate(ctx, token)
	require.NoError(t, err)

	_, err = s.SetPassword(ctx, agent.ID, newPassword, "password", "")
	require.NoError(t, err)
	_, _, err = s.ChangePassword(ctx, cur, oldPassword, "a third passphrase")
	require.ErrorIs(t, err, ErrInvalidSession, "a change made with an ended session is rejected")
	_, _, err = s.SignIn(ctx, agent.Email, newPassword, Client{})
	require.NoError(t, err, "the admin's password stays")
}

// TestSignInAfterConcurrentRehash signs in while another sign-in upgrades
// the stored hash of the same password.
func TestSignInAfterConcurrentRehash(t *testing.T) {
	t.Parallel()
	s := NewSessions(testenv.DB(t, "auth"), Config{}, nil)
	weak := weakHash(oldPassword)
	agent := newAgent(t, s, weak)
	ctx := context.Background()

	s.afterVerify = func() {
		s.afterVerify = nil
		_, _, err := s.SignIn(ctx, agent.Email, oldPassword, Client{})
		require.NoError(t, err, "the concurrent sign-in")
	}
	_, _, err := s.SignIn(ctx, agent.Email, oldPassword, Client{})
	require.NoError(t, err, "an upgraded hash of the same password still signs in")

	var stored models.Agent
	require.NoError(t, s.db.Take(&stored, "id = ?", agent.ID).Error)
	ok, rehash, err := VerifyPassword(*stored.PasswordHash, oldPassword)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash, "the upgrade stands")
}
