// Package webhooks manages webhook endpoints and delivers outbox events to
// them: fan-out to subscribed endpoints, signing, HTTP delivery with
// retries, and the delivery log.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/paging"
)

// AllEvents subscribes an endpoint to every event type.
const AllEvents = "*"

// maxURLLength is the longest endpoint URL accepted, in bytes.
const maxURLLength = 2048

// NewEndpoint is the input of CreateEndpoint.
type NewEndpoint struct {
	URL         string
	Events      []string
	Description string
}

// EndpointPatch is the input of UpdateEndpoint. Unset fields keep their
// value.
type EndpointPatch struct {
	URL         outpost.Field[string]
	Events      outpost.Field[[]string]
	Description outpost.Field[string]
	Enabled     outpost.Field[bool]
}

// DeliveryFilter narrows ListDeliveries. Empty fields do not filter.
type DeliveryFilter struct {
	Status    models.DeliveryStatus
	EventType string
}

// Endpoints stores webhook endpoints and reads their delivery log.
type Endpoints struct {
	db      *gorm.DB
	nowFunc func() time.Time

	// AllowPrivateNetworks accepts endpoint URLs on loopback and private
	// addresses, which are otherwise rejected. It must match the
	// Deliverer's Config.AllowPrivateNetworks.
	AllowPrivateNetworks bool
}

// NewEndpoints returns an Endpoints backed by db. nowFunc is the clock; nil
// means time.Now.
func NewEndpoints(db *gorm.DB, nowFunc func() time.Time) *Endpoints {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Endpoints{db: db, nowFunc: nowFunc}
}

func (e *Endpoints) now() time.Time { return e.nowFunc().UTC().Truncate(time.Microsecond) }

var endpointSortKeys = map[string]string{"createdAt": "created_at"}

var deliverySortKeys = map[string]string{"createdAt": "created_at"}

// Create stores a new enabled endpoint with a fresh signing secret. The
// returned endpoint's Secret is the only time the secret leaves Outpost.
func (e *Endpoints) Create(ctx context.Context, in NewEndpoint) (models.WebhookEndpoint, error) {
	if err := e.validateURL(ctx, in.URL); err != nil {
		return models.WebhookEndpoint{}, err
	}
	events, err := normalizeEvents(in.Events)
	if err != nil {
		return models.WebhookEndpoint{}, err
	}
	now := e.now()
	ep := models.WebhookEndpoint{
		ID:          models.NewID(models.PrefixEndpoint),
		URL:         in.URL,
		Description: in.Description,
		Events:      events,
		Secret:      NewSecret(),
		Enabled:     true,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	err = e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&ep).Error; err != nil {
			return fmt.Errorf("insert webhook endpoint: %w", err)
		}
		return audit.RecordChange(ctx, tx, ep.ID)
	})
	return ep, err
}

// Update applies patch to endpoint id.
func (e *Endpoints) Update(ctx context.Context, id string, patch EndpointPatch) (models.WebhookEndpoint, error) {
	// The URL check may resolve the host name, so it runs before the row is
	// locked: deliveries that record their attempts wait on that lock.
	if patch.URL.Set {
		if err := e.validateURL(ctx, patch.URL.Value); err != nil {
			return models.WebhookEndpoint{}, err
		}
	}
	var ep models.WebhookEndpoint
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&ep, "id = ?", id).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return outpost.NotFound("webhook endpoint", id)
		}
		if err != nil {
			return fmt.Errorf("load webhook endpoint: %w", err)
		}
		if patch.URL.Set {
			ep.URL = patch.URL.Value
		}
		if patch.Events.Set {
			events, err := normalizeEvents(patch.Events.Value)
			if err != nil {
				return err
			}
			ep.Events = events
		}
		if patch.Description.Set {
			ep.Description = patch.Description.Value
		}
		if patch.Enabled.Set && patch.Enabled.Value != ep.Enabled {
			ep.Enabled = patch.Enabled.Value
			// Enabling an endpoint gives it a clean record.
			ep.DisabledReason, ep.DisabledAt = "", nil
			ep.FailingSince, ep.ConsecutiveFailures = nil, 0
		}
		ep.UpdatedAt = e.now()
		if err := tx.Save(&ep).Error; err != nil {
			return fmt.Errorf("save webhook endpoint: %w", err)
		}
		return audit.RecordChange(ctx, tx, ep.ID)
	})
	return ep, err
}

// Get returns endpoint id.
func (e *Endpoints) Get(ctx context.Context, id string) (models.WebhookEndpoint, error) {
	var ep models.WebhookEndpoint
	err := e.db.WithContext(ctx).Take(&ep, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ep, outpost.NotFound("webhook endpoint", id)
	}
	if err != nil {
		return ep, fmt.Errorf("load webhook endpoint: %w", err)
	}
	return ep, nil
}

// Delete removes endpoint id and its delivery log. Deliveries already queued
// for it are dropped when a worker picks them up.
func (e *Endpoints) Delete(ctx context.Context, id string) error {
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Delete(&models.WebhookEndpoint{}, "id = ?", id)
		if res.Error != nil {
			return fmt.Errorf("delete webhook endpoint: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return outpost.NotFound("webhook endpoint", id)
		}
		return audit.RecordChange(ctx, tx, id)
	})
}

// MaxRotationGrace bounds how long a replaced secret may keep signing.
const MaxRotationGrace = 30 * 24 * time.Hour

// RotateSecret gives endpoint id a new signing secret and returns the
// endpoint with it. The replaced secret keeps signing beside the new one for
// grace, so deliveries carry two signatures until receivers switch; zero
// grace retires it at once. A second rotation within the grace period
// retires the oldest secret.
func (e *Endpoints) RotateSecret(ctx context.Context, id string, grace time.Duration) (models.WebhookEndpoint, error) {
	if grace < 0 || grace > MaxRotationGrace {
		return models.WebhookEndpoint{}, outpost.Invalid("body.gracePeriodMinutes", int(grace/time.Minute),
			"must be between 0 and %d minutes (30 days)", int(MaxRotationGrace/time.Minute))
	}
	var ep models.WebhookEndpoint
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&ep, "id = ?", id).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return outpost.NotFound("webhook endpoint", id)
		}
		if err != nil {
			return fmt.Errorf("load webhook endpoint: %w", err)
		}
		now := e.now()
		ep.PreviousSecret, ep.PreviousSecretExpiresAt = "", nil
		if grace > 0 {
			expires := now.Add(grace)
			ep.PreviousSecret, ep.PreviousSecretExpiresAt = ep.Secret, &expires
		}
		ep.Secret = NewSecret()
		ep.UpdatedAt = now
		if err := tx.Save(&ep).Error; err != nil {
			return fmt.Errorf("save webhook endpoint: %w", err)
		}
		return audit.RecordChange(ctx, tx, ep.ID)
	})
	return ep, err
}

// GetDelivery returns delivery id with its attempts.
func (e *Endpoints) GetDelivery(ctx context.Context, id string) (models.WebhookDelivery, error) {
	var dlv models.WebhookDelivery
	err := e.db.WithContext(ctx).
		Preload("Attempts", func(db *gorm.DB) *gorm.DB { return db.Order("number") }).
		Take(&dlv, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return dlv, outpost.NotFound("webhook delivery", id)
	}
	if err != nil {
		return dlv, fmt.Errorf("load webhook delivery: %w", err)
	}
	return dlv, nil
}

// List returns one page of endpoints, oldest first by default.
func (e *Endpoints) List(ctx context.Context, p paging.Params) ([]models.WebhookEndpoint, *string, error) {
	q, err := paging.New(p, endpointSortKeys, "createdAt")
	if err != nil {
		return nil, nil, err
	}
	var rows []models.WebhookEndpoint
	if err := q.Apply(e.db.WithContext(ctx), "webhook_endpoints").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	page, next := paging.Page(q, rows, func(ep models.WebhookEndpoint) (time.Time, string) { return ep.CreatedAt, ep.ID })
	return page, next, nil
}

// ListDeliveries returns one page of endpoint id's deliveries, newest first
// by default, each with its attempts.
func (e *Endpoints) ListDeliveries(ctx context.Context, id string, f DeliveryFilter, p paging.Params) ([]models.WebhookDelivery, *string, error) {
	q, err := paging.New(p, deliverySortKeys, "-createdAt")
	if err != nil {
		return nil, nil, err
	}
	if _, err := e.Get(ctx, id); err != nil {
		return nil, nil, err
	}
	db := e.db.WithContext(ctx).Where("endpoint_id = ?", id)
	if f.Status != "" {
		db = db.Where("status = ?", f.Status)
	}
	if f.EventType != "" {
		db = db.Where("event_type = ?", f.EventType)
	}
	db = db.Preload("Attempts", func(db *gorm.DB) *gorm.DB { return db.Order("number") })
	var rows []models.WebhookDelivery
	if err := q.Apply(db, "webhook_deliveries").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	page, next := paging.Page(q, rows, func(d models.WebhookDelivery) (time.Time, string) { return d.CreatedAt, d.ID })
	return page, next, nil
}

// validateURL checks that raw is an http or https URL that deliveries may
// reach.
func (e *Endpoints) validateURL(ctx context.Context, raw string) error {
	if err := validateURL(raw); err != nil || e.AllowPrivateNetworks {
		return err
	}
	u, _ := url.Parse(raw)
	if err := checkHost(ctx, u.Hostname()); err != nil {
		return outpost.Invalid("body.url", raw, "%v; deliveries never reach loopback, private, link-local, "+
			"carrier-grade NAT, multicast or cloud metadata addresses. For local development, start Outpost "+
			"with OUTPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true", err)
	}
	return nil
}

func validateURL(raw string) error {
	if len(raw) > maxURLLength {
		return outpost.Invalid("body.url", raw, "URL is longer than %d bytes", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Hostname() == "" {
		return outpost.Invalid("body.url", raw, "must be an absolute http or https URL, such as https://hooks.example.com/outpost")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return outpost.Invalid("body.url", raw, "scheme %q is not supported; use http or https", u.Scheme)
	}
	if u.User != nil {
		return outpost.Invalid("body.url", "(redacted)", "URL must not contain credentials; receivers authenticate deliveries by their signature")
	}
	if u.Fragment != "" {
		return outpost.Invalid("body.url", raw, "URL must not contain a fragment (#…)")
	}
	return nil
}

// normalizeEvents checks event types and returns them sorted and without
// repeats.
func normalizeEvents(events []string) (pq.StringArray, error) {
	if len(events) == 0 {
		return nil, outpost.Invalid("body.events", events, "list at least one event type, or [\"*\"] for all: %s", strings.Join(outbox.Types, ", "))
	}
	out := pq.StringArray{}
	for i, ev := range events {
		if ev != AllEvents && !slices.Contains(outbox.Types, ev) {
			return nil, outpost.Invalid(fmt.Sprintf("body.events[%d]", i), ev, "unknown event type; use \"*\" or one of %s", strings.Join(outbox.Types, ", "))
		}
		if !slices.Contains(out, ev) {
			out = append(out, ev)
		}
	}
	if slices.Contains(out, AllEvents) && len(out) > 1 {
		return nil, outpost.Invalid("body.events", events, "\"*\" already subscribes to every event type; send it alone")
	}
	slices.Sort(out)
	return out, nil
}
