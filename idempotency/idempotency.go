// Package idempotency stores the responses of create requests by their
// Idempotency-Key, so that a client that repeats a request gets the first
// response and nothing is created twice.
package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DefaultTTL is how long a key and its stored response are kept. Expired
// rows are replaced when their key is used again, and DeleteExpired
// removes the rest.
const DefaultTTL = 24 * time.Hour

// staleClaimAfter is when an unfinished claim whose create has not
// committed may be taken over, because the request that made it presumably
// crashed. It is five times the API server's 60 s write timeout.
// NOTE: a handler that runs longer than this without committing loses its
// claim, and a repeat can then create a second record.
const staleClaimAfter = 5 * time.Minute

// Record is the stored state of one key.
type Record struct {
	// PrincipalID is the API key or agent that sent the request; keys
	// are scoped to it.
	PrincipalID string
	Key         string
	RequestHash []byte
	// Status is nil while the first request runs.
	Status *int
	// ResourceID is the record that the first request created, set in
	// the create's transaction; nil until then.
	ResourceID  *string
	ContentType string
	Body        []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// TableName is the table of Record.
func (Record) TableName() string { return "idempotency_keys" }

// Store keeps idempotency keys in PostgreSQL.
type Store struct {
	db      *gorm.DB
	ttl     time.Duration
	nowFunc func() time.Time
}

// New returns a Store backed by db that keeps keys for ttl (DefaultTTL when
// zero). nowFunc is the clock; nil means time.Now.
func New(db *gorm.DB, ttl time.Duration, nowFunc func() time.Time) *Store {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Store{db: db, ttl: ttl, nowFunc: nowFunc}
}

// Claim inserts the row of key for principalID, which makes the caller the one
// request that runs. When the key exists and has neither expired nor gone
// stale, Claim returns claimed false and the stored record, whose Status is
// nil while its request still runs. The unique primary key lets exactly one
// of several concurrent claims win.
func (s *Store) Claim(ctx context.Context, principalID, key string, requestHash []byte) (bool, Record, error) {
	now := s.nowFunc().UTC().Truncate(time.Microsecond)
	db := s.db.WithContext(ctx)
	var claimed []string
	err := db.Raw(`
		INSERT INTO idempotency_keys (principal_id, key, request_hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (principal_id, key) DO UPDATE
		SET request_hash = EXCLUDED.request_hash, status = NULL, content_type = '', body = NULL, resource_id = NULL,
		    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
		WHERE idempotency_keys.expires_at <= ?
		   OR (idempotency_keys.status IS NULL AND idempotency_keys.resource_id IS NULL
		       AND idempotency_keys.created_at <= ?)
		RETURNING principal_id`,
		principalID, key, requestHash, now, now.Add(s.ttl), now, now.Add(-staleClaimAfter)).Scan(&claimed).Error
	if err != nil {
		return false, Record{}, fmt.Errorf("claim idempotency key: %w", err)
	}
	if len(claimed) == 1 {
		return true, Record{}, nil
	}

	var rec Record
	err = db.Take(&rec, "principal_id = ? AND key = ?", principalID, key).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// The claim was released between the insert and this read; the
		// caller treats the key as busy and the client retries.
		return false, Record{PrincipalID: principalID, Key: key, RequestHash: requestHash}, nil
	}
	if err != nil {
		return false, Record{}, fmt.Errorf("load idempotency key: %w", err)
	}
	return false, rec, nil
}

// Complete stores the response of the request that claimed key.
func (s *Store) Complete(ctx context.Context, principalID, key string, status int, contentType string, body []byte) error {
	err := s.db.WithContext(ctx).Model(&Record{}).
		Where("principal_id = ? AND key = ? AND status IS NULL", principalID, key).
		Updates(map[string]any{"status": status, "content_type": contentType, "body": body}).Error
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}

// Release deletes an unfinished claim, so that the client can retry with
// the same key after a request that created nothing.
func (s *Store) Release(ctx context.Context, principalID, key string) error {
	err := s.db.WithContext(ctx).
		Where("principal_id = ? AND key = ? AND status IS NULL", principalID, key).
		Delete(&Record{}).Error
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// DeleteExpired deletes up to limit expired keys and returns how many it
// deleted.
func (s *Store) DeleteExpired(ctx context.Context, limit int) (int64, error) {
	now := s.nowFunc().UTC()
	res := s.db.WithContext(ctx).Exec(`
		DELETE FROM idempotency_keys WHERE (principal_id, key) IN (
			SELECT principal_id, key FROM idempotency_keys
			WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`, now, limit)
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", res.Error)
	}
	return res.RowsAffected, nil
}

type claimContextKey struct{}

// claim is the key that a context's request has claimed.
type claim struct {
	principalID string
	key         string
}

// WithClaim returns ctx carrying the key that its request claimed, for
// RecordCreated.
func WithClaim(ctx context.Context, principalID, key string) context.Context {
	return context.WithValue(ctx, claimContextKey{}, claim{principalID: principalID, key: key})
}

// RecordCreated stores resourceID on the key that ctx carries, in tx, the
// transaction of the create. Once that commits, the claim cannot be taken
// over, so a repeat never creates a second record even if the first
// response is lost. Without a key in ctx it does nothing.
func RecordCreated(ctx context.Context, tx *gorm.DB, resourceID string) error {
	c, ok := ctx.Value(claimContextKey{}).(claim)
	if !ok {
		return nil
	}
	err := tx.Model(&Record{}).
		Where("principal_id = ? AND key = ? AND status IS NULL", c.principalID, c.key).
		Update("resource_id", resourceID).Error
	if err != nil {
		return fmt.Errorf("record idempotent create: %w", err)
	}
	return nil
}
