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
// A create that commits after its claim was taken over rolls back with
// ErrClaimLost.
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
// request that runs, and returns claimed true with the new row, whose
// CreatedAt identifies this claim. When the key exists and has neither
// expired nor gone stale, Claim returns claimed false and the stored
// record, whose Status is nil while its request still runs. The unique
// primary key lets exactly one of several concurrent claims win.
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
		return true, Record{PrincipalID: principalID, Key: key, RequestHash: requestHash,
			CreatedAt: now, ExpiresAt: now.Add(s.ttl)}, nil
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

// Abandoned reports whether rec, an unfinished claim, is older than a
// request may run, so that its request has presumably stopped.
func (s *Store) Abandoned(rec Record) bool {
	return s.nowFunc().Sub(rec.CreatedAt) >= staleClaimAfter
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
// the same key after a request that created nothing. A claim whose create
// committed stays, even when its request then failed.
func (s *Store) Release(ctx context.Context, principalID, key string) error {
	err := s.db.WithContext(ctx).
		Where("principal_id = ? AND key = ? AND status IS NULL AND resource_id IS NULL", principalID, key).
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

// ErrClaimLost reports a create whose idempotency claim a later request
// took over, because the create ran past the stale-claim limit.
var ErrClaimLost = errors.New("the Idempotency-Key was claimed again by a later request because this one ran too long")

// WithClaim returns ctx carrying rec, the claim that Claim returned to the
// context's request, for RecordCreated.
func WithClaim(ctx context.Context, rec Record) context.Context {
	return context.WithValue(ctx, claimContextKey{}, rec)
}

// RecordCreated stores resourceID on the key that ctx carries, in tx, the
// transaction of the create. Once that commits, the claim cannot be taken
// over, so a repeat never creates a second record even if the first
// response is lost. Without a key in ctx it does nothing.
//
// When a later request has taken the claim over, RecordCreated returns
// ErrClaimLost, so that the create rolls back rather than run twice.
func RecordCreated(ctx context.Context, tx *gorm.DB, resourceID string) error {
	c, ok := ctx.Value(claimContextKey{}).(Record)
	if !ok {
		return nil
	}
	res := tx.Model(&Record{}).
		Where("principal_id = ? AND key = ? AND created_at = ? AND status IS NULL AND resource_id IS NULL",
			c.PrincipalID, c.Key, c.CreatedAt).
		Update("resource_id", resourceID)
	if res.Error != nil {
		return fmt.Errorf("record idempotent create: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrClaimLost
	}
	return nil
}
