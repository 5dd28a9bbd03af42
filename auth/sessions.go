// Package auth signs agents in to the dashboard: password hashing, sessions
// kept in PostgreSQL behind an opaque cookie, the CSRF token derived from
// each session, and the slowing of repeated sign-in attempts.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
)

// Errors of SignIn and Authenticate. Both are deliberately vague: a caller
// learns neither which email addresses belong to agents nor why a session
// ended.
var (
	ErrInvalidCredentials = errors.New("email or password is incorrect")
	ErrInvalidSession     = errors.New("session is invalid or has expired")
)

const (
	// tokenPrefix starts every session token, so that secret scanners
	// can recognize one.
	tokenPrefix = "ops_"
	// lastSeenResolution limits how often last_seen_at is written for a
	// session in steady use. Idle expiry is exact to this resolution, or
	// to a tenth of the idle timeout when that is shorter.
	lastSeenResolution = time.Minute
)

// tokenLength is the length of a token: tokenPrefix and the unpadded
// base64url encoding of 32 random bytes.
var tokenLength = len(tokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// Default session lifetimes.
const (
	DefaultIdleTimeout     = 2 * time.Hour
	DefaultAbsoluteTimeout = 24 * time.Hour
)

// Config sets session lifetimes.
type Config struct {
	// IdleTimeout ends a session this long after its last request.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in, however
	// active it is.
	AbsoluteTimeout time.Duration
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.IdleTimeout < lastSeenResolution:
		return fmt.Errorf("session idle timeout %s is shorter than %s", c.IdleTimeout, lastSeenResolution)
	case c.AbsoluteTimeout < c.IdleTimeout:
		return fmt.Errorf("session absolute timeout %s is shorter than the idle timeout %s", c.AbsoluteTimeout, c.IdleTimeout)
	}
	return nil
}

// Sessions signs agents in and out and authenticates their sessions.
type Sessions struct {
	db      *gorm.DB
	cfg     Config
	nowFunc func() time.Time
	// afterVerify, when set, runs in SignIn between the password check
	// and the locked write, so that tests can race a change there.
	afterVerify func()
}

// NewSessions returns Sessions backed by db. Zero lifetimes in cfg take
// their defaults. nowFunc is the clock; nil means time.Now.
func NewSessions(db *gorm.DB, cfg Config, nowFunc func() time.Time) *Sessions {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout == 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Sessions{db: db, cfg: cfg, nowFunc: nowFunc}
}

// Config returns the session lifetimes in use.
func (s *Sessions) Config() Config { return s.cfg }

func (s *Sessions) now() time.Time { return s.nowFunc().UTC().Truncate(time.Microsecond) }

// Client describes where a sign-in comes from, for the session record.
type Client struct {
	Address   string
	UserAgent string
}

// Current is an authenticated session and its agent.
type Current struct {
	Session models.Session
	Agent   models.Agent
	// IdleExpiresAt is when the session ends unless it is used again.
	IdleExpiresAt time.Time
}

// SignIn checks email and password and starts a session. It returns the
// session's token, which is stored only as a hash, and
// ErrInvalidCredentials for an unknown email, a wrong password, an
// inactive agent or one without a password.
func (s *Sessions) SignIn(ctx context.Context, email, password string, client Client) (Current, string, error) {
	db := s.db.WithContext(ctx)
	var agent models.Agent
	err := db.Take(&agent, "lower(email) = lower(?)", models.NormalizeEmail(email)).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return Current{}, "", fmt.Errorf("load agent: %w", err)
	}
	if err != nil || !agent.Active || agent.PasswordHash == nil {
		_, _, _ = VerifyPassword(dummyHash, password)
		return Current{}, "", ErrInvalidCredentials
	}
	ok, rehash, err := VerifyPassword(*agent.PasswordHash, password)
	if err != nil {
		return Current{}, "", fmt.Errorf("verify password of agent %s: %w", agent.ID, err)
	}
	if !ok {
		return Current{}, "", ErrInvalidCredentials
	}

	session, token := s.newSession(agent.ID, client, s.now().Add(s.cfg.AbsoluteTimeout))
	if s.afterVerify != nil {
		s.afterVerify()
	}
	var rehashed string
	if rehash {
		rehashed = HashPassword(password)
	}

	// The password was verified without a lock, because hashing is slow.
	// A password change or a deactivation may have committed since, and
	// it ended the agent's sessions, so the row is locked and checked
	// again before the session is stored.
	err = db.Transaction(func(tx *gorm.DB) error {
		var current models.Agent
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&current, "id = ?", agent.ID).Error; err != nil {
			return fmt.Errorf("lock agent: %w", err)
		}
		if !current.Active || !stillMatches(current, *agent.PasswordHash, password) {
			return ErrInvalidCredentials
		}
		if rehashed != "" && *current.PasswordHash == *agent.PasswordHash {
			if err := tx.Model(&current).Update("password_hash", rehashed).Error; err != nil {
				return fmt.Errorf("rehash password: %w", err)
			}
		}
		agent = current
		if err := tx.Create(&session).Error; err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
	if err != nil {
		return Current{}, "", err
	}
	return s.current(session, agent), token, nil
}

// Authenticate returns the session whose token is token, with its agent as
// it is now, so that a role change or a deactivation takes effect on the
// next request. It returns ErrInvalidSession for a malformed, unknown or
// expired token, or when the agent is inactive.
func (s *Sessions) Authenticate(ctx context.Context, token string) (Current, error) {
	if !wellFormed(token) {
		return Current{}, ErrInvalidSession
	}
	db := s.db.WithContext(ctx)

	sum := sha256.Sum256([]byte(token))
	var session models.Session
	err := db.Take(&session, "token_hash = ?", sum[:]).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Current{}, ErrInvalidSession
	}
	if err != nil {
		return Current{}, fmt.Errorf("load session: %w", err)
	}
	now := s.now()
	cur := Current{Session: session}
	cur.IdleExpiresAt = s.idleExpiry(session)
	if !now.Before(session.ExpiresAt) || !now.Before(cur.IdleExpiresAt) {
		if err := db.Delete(&models.Session{}, "id = ?", session.ID).Error; err != nil {
			return Current{}, fmt.Errorf("delete expired session: %w", err)
		}
		return Current{}, ErrInvalidSession
	}

	if err := db.Take(&cur.Agent, "id = ?", session.AgentID).Error; err != nil {
		return Current{}, fmt.Errorf("load agent of session: %w", err)
	}
	if !cur.Agent.Active || cur.Agent.PasswordHash == nil {
		return Current{}, ErrInvalidSession
	}

	if now.Sub(session.LastSeenAt) >= min(lastSeenResolution, s.cfg.IdleTimeout/10) {
		err := db.Model(&models.Session{}).Where("id = ?", session.ID).Update("last_seen_at", now).Error
		if err != nil {
			return Current{}, fmt.Errorf("record session use: %w", err)
		}
		cur.Session.LastSeenAt = now
		cur.IdleExpiresAt = s.idleExpiry(cur.Session)
	}
	return cur, nil
}

// SignOut ends session sessionID. Ending a session that does not exist is
// not an error.
func (s *Sessions) SignOut(ctx context.Context, sessionID string) error {
	if err := s.db.WithContext(ctx).Delete(&models.Session{}, "id = ?", sessionID).Error; err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// SetPassword validates and stores a new password for agent agentID and
// ends the agent's sessions other than keepSessionID, which may be empty.
// field names the password in a FieldError.
func (s *Sessions) SetPassword(ctx context.Context, agentID, password, field, keepSessionID string) (models.Agent, error) {
	if err := ValidatePassword(field, password); err != nil {
		return models.Agent{}, err
	}
	hash := HashPassword(password)
	var agent models.Agent
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&agent, "id = ?", agentID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return outpost.NotFound("agent", agentID)
		}
		if err != nil {
			return fmt.Errorf("load agent: %w", err)
		}
		agent.PasswordHash = &hash
		agent.UpdatedAt = s.now()
		if err := tx.Model(&agent).Select("password_hash", "updated_at").Updates(&agent).Error; err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		if err := tx.Where("agent_id = ? AND id <> ?", agentID, keepSessionID).Delete(&models.Session{}).Error; err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return audit.RecordChange(ctx, tx, agentID)
	})
	return agent, err
}

// ChangePassword replaces the password of the agent signed in to cur after
// checking the current one. It ends every session of the agent, cur's
// included, and returns a new session in place of cur with cur's expiry
// time, so that a token taken before the change stops working.
func (s *Sessions) ChangePassword(ctx context.Context, cur Current, currentPassword, newPassword string) (Current, string, error) {
	if cur.Agent.PasswordHash == nil {
		return Current{}, "", ErrInvalidSession
	}
	ok, _, err := VerifyPassword(*cur.Agent.PasswordHash, currentPassword)
	if err != nil {
		return Current{}, "", fmt.Errorf("verify password of agent %s: %w", cur.Agent.ID, err)
	}
	if !ok {
		return Current{}, "", &outpost.FieldError{Field: "body.currentPassword", Message: "current password is incorrect"}
	}
	if currentPassword == newPassword {
		return Current{}, "", &outpost.FieldError{Field: "body.newPassword", Message: "new password is the same as the current one"}
	}
	if err := ValidatePassword("body.newPassword", newPassword); err != nil {
		return Current{}, "", err
	}
	hash := HashPassword(newPassword)
	session, token := s.newSession(cur.Agent.ID, Client{Address: cur.Session.Address, UserAgent: cur.Session.UserAgent},
		cur.Session.ExpiresAt)

	agent := cur.Agent
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&agent, "id = ?", cur.Agent.ID).Error; err != nil {
			return fmt.Errorf("lock agent: %w", err)
		}
		// Another change since the session was authenticated ended it.
		res := tx.Where("id = ?", cur.Session.ID).Delete(&models.Session{})
		if res.Error != nil {
			return fmt.Errorf("end session: %w", res.Error)
		}
		if res.RowsAffected == 0 || !stillMatches(agent, *cur.Agent.PasswordHash, currentPassword) {
			return ErrInvalidSession
		}
		agent.PasswordHash = &hash
		agent.UpdatedAt = s.now()
		if err := tx.Model(&agent).Select("password_hash", "updated_at").Updates(&agent).Error; err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		if err := tx.Where("agent_id = ?", agent.ID).Delete(&models.Session{}).Error; err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		if err := tx.Create(&session).Error; err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return audit.RecordChange(ctx, tx, agent.ID)
	})
	if err != nil {
		return Current{}, "", err
	}
	return s.current(session, agent), token, nil
}

// stillMatches reports whether password, verified against the hash
// verified, is still agent's password. A different stored hash usually
// means a password change, but a concurrent sign-in may only have upgraded
// the hash of the same password, so the password is checked against it.
func stillMatches(agent models.Agent, verified, password string) bool {
	if agent.PasswordHash == nil {
		return false
	}
	if *agent.PasswordHash == verified {
		return true
	}
	ok, _, err := VerifyPassword(*agent.PasswordHash, password)
	return err == nil && ok
}

// newSession returns a session of agentID that ends at expiresAt, and its
// token.
func (s *Sessions) newSession(agentID string, client Client, expiresAt time.Time) (models.Session, string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	now := s.now()
	return models.Session{
		ID:         models.NewID(models.PrefixSession),
		TokenHash:  sum[:],
		AgentID:    agentID,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  expiresAt,
		Address:    truncate(client.Address, 100),
		UserAgent:  truncate(client.UserAgent, 500),
	}, token
}

// DeleteExpired deletes up to limit sessions that have expired, by either
// lifetime, and returns how many it deleted.
func (s *Sessions) DeleteExpired(ctx context.Context, limit int) (int64, error) {
	now := s.now()
	res := s.db.WithContext(ctx).Exec(`
		DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?
			LIMIT ?)`, now, now.Add(-s.cfg.IdleTimeout), limit)
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// CSRFToken returns the CSRF token of the session whose token is token:
// an HMAC of a fixed label keyed by the session token. It is stable for the
// session's life, needs no storage, and cannot be derived without the
// cookie.
func CSRFToken(token string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("outpost csrf token"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// ValidCSRFToken reports whether csrf is the CSRF token of token.
func ValidCSRFToken(token, csrf string) bool {
	return hmac.Equal([]byte(CSRFToken(token)), []byte(csrf))
}

func (s *Sessions) current(session models.Session, agent models.Agent) Current {
	return Current{Session: session, Agent: agent, IdleExpiresAt: s.idleExpiry(session)}
}

func (s *Sessions) idleExpiry(session models.Session) time.Time {
	idle := session.LastSeenAt.Add(s.cfg.IdleTimeout)
	if idle.After(session.ExpiresAt) {
		return session.ExpiresAt
	}
	return idle
}

// wellFormed reports whether token has the shape of a session token, so
// that malformed input never reaches the database.
func wellFormed(token string) bool {
	if len(token) != tokenLength || !strings.HasPrefix(token, tokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token[len(tokenPrefix):])
	return err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
