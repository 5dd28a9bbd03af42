// Package apikeys creates API keys and authenticates requests that carry
// them. Only a SHA-256 hash of each key is stored.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// ErrInvalidKey reports a key that is malformed, unknown, revoked or
// expired.
var ErrInvalidKey = errors.New("invalid API key")

const (
	// keyPrefix starts every API key, so that secret scanners and people
	// can recognize one.
	keyPrefix = "opk_"
	// lookupLength is the length of the key's start that is stored in
	// clear text to find its row. It includes keyPrefix and 8 random
	// characters, which identify the key but do not help to guess it.
	lookupLength = len(keyPrefix) + 8
	// lastUsedResolution limits how often lastUsedAt is written for a key
	// in steady use.
	lastUsedResolution = time.Minute
)

// Keys stores API keys.
type Keys struct {
	db      *gorm.DB
	nowFunc func() time.Time
}

// New returns a Keys backed by db. nowFunc is the clock; nil means time.Now.
func New(db *gorm.DB, nowFunc func() time.Time) *Keys {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Keys{db: db, nowFunc: nowFunc}
}

// NewKey describes a key to create.
type NewKey struct {
	Name string
	Role models.Role
	// ExpiresAt, when set, is when the key stops authenticating. It must
	// be in the future.
	ExpiresAt *time.Time
}

// Create stores a new key and returns its record and the secret key, which
// is not stored and cannot be shown again.
func (k *Keys) Create(ctx context.Context, spec NewKey) (models.APIKey, string, error) {
	name := strings.TrimSpace(spec.Name)
	if name == "" {
		return models.APIKey{}, "", outpost.Invalid("body.name", spec.Name, "API key name is empty; name the integration that will use it")
	}
	if !spec.Role.Valid() {
		return models.APIKey{}, "", outpost.Invalid("body.role", spec.Role, "invalid role %q; use admin, agent or viewer", spec.Role)
	}
	now := k.nowFunc().UTC().Truncate(time.Microsecond)
	var expiresAt *time.Time
	if spec.ExpiresAt != nil {
		t := spec.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			return models.APIKey{}, "", outpost.Invalid("body.expiresAt", t, "expiry time is not in the future")
		}
		expiresAt = &t
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	secret := keyPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))

	key := models.APIKey{
		ID:        models.NewID(models.PrefixAPIKey),
		Name:      name,
		Role:      spec.Role,
		Prefix:    secret[:lookupLength],
		Hash:      sum[:],
		CreatedAt: now,
		ExpiresAt: expiresAt,
	}
	err := k.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&key).Error; err != nil {
			return fmt.Errorf("insert API key: %w", err)
		}
		return audit.RecordChange(ctx, tx, key.ID)
	})
	if err != nil {
		return models.APIKey{}, "", err
	}
	return key, secret, nil
}

// Authenticate returns the active key whose secret is token. It compares the
// hashes in constant time and returns ErrInvalidKey for any key it does not
// accept, including revoked keys and keys whose expiry time has come. Every
// call reads the row, so a revocation or expiry takes effect on the next
// request.
func (k *Keys) Authenticate(ctx context.Context, token string) (models.APIKey, error) {
	if !wellFormed(token) {
		return models.APIKey{}, ErrInvalidKey
	}
	db := k.db.WithContext(ctx)
	var key models.APIKey
	err := db.Take(&key, "prefix = ?", token[:lookupLength]).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return models.APIKey{}, ErrInvalidKey
	}
	if err != nil {
		return models.APIKey{}, fmt.Errorf("load API key: %w", err)
	}

	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], key.Hash) != 1 || key.RevokedAt != nil {
		return models.APIKey{}, ErrInvalidKey
	}
	now := k.nowFunc().UTC().Truncate(time.Microsecond)
	if key.ExpiresAt != nil && !now.Before(*key.ExpiresAt) {
		return models.APIKey{}, ErrInvalidKey
	}

	if key.LastUsedAt == nil || now.Sub(*key.LastUsedAt) >= lastUsedResolution {
		err := db.Model(&models.APIKey{}).Where("id = ?", key.ID).Update("last_used_at", now).Error
		if err != nil {
			return models.APIKey{}, fmt.Errorf("record API key use: %w", err)
		}
		key.LastUsedAt = &now
	}
	return key, nil
}

// keyLength is the length of a key: keyPrefix and the unpadded base64url
// encoding of 32 bytes.
var keyLength = len(keyPrefix) + base64.RawURLEncoding.EncodedLen(32)

// wellFormed reports whether token has the shape of a key, so that
// malformed input, which may not even be valid text, never reaches the
// database.
func wellFormed(token string) bool {
	if len(token) != keyLength || !strings.HasPrefix(token, keyPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token[len(keyPrefix):])
	return err == nil
}

// List returns every key, newest first, revoked ones included.
func (k *Keys) List(ctx context.Context) ([]models.APIKey, error) {
	var keys []models.APIKey
	if err := k.db.WithContext(ctx).Order("created_at DESC, id DESC").Find(&keys).Error; err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// listSortKeys are the sort keys of ListPage.
var listSortKeys = map[string]string{"createdAt": "created_at"}

// ListPage returns one page of keys, newest first by default, revoked and
// expired ones included.
func (k *Keys) ListPage(ctx context.Context, p paging.Params) ([]models.APIKey, *string, error) {
	q, err := paging.New(p, listSortKeys, "-createdAt")
	if err != nil {
		return nil, nil, err
	}
	var rows []models.APIKey
	if err := q.Apply(k.db.WithContext(ctx).Model(&models.APIKey{}), "api_keys").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list API keys: %w", err)
	}
	page, next := paging.Page(q, rows, func(key models.APIKey) (time.Time, string) {
		return key.CreatedAt, key.ID
	})
	return page, next, nil
}

// Revoke revokes key id, after which Authenticate rejects it, and reports
// whether this call revoked it. Revoking a revoked key changes nothing: it
// keeps its first revocation time and writes no audit entry.
func (k *Keys) Revoke(ctx context.Context, id string) (models.APIKey, bool, error) {
	now := k.nowFunc().UTC().Truncate(time.Microsecond)
	var key models.APIKey
	var revoked bool
	err := k.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now)
		if res.Error != nil {
			return fmt.Errorf("revoke API key: %w", res.Error)
		}
		err := tx.Take(&key, "id = ?", id).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return outpost.NotFound("API key", id)
		}
		if err != nil {
			return fmt.Errorf("load API key: %w", err)
		}
		if revoked = res.RowsAffected == 1; !revoked {
			return nil
		}
		return audit.RecordChange(ctx, tx, key.ID)
	})
	return key, revoked, err
}
