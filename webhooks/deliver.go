package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/tasks"
)

// Config tunes delivery. The zero value of a field means its default.
type Config struct {
	// RetrySchedule is the delay before each retry; its length is the number
	// of retries after the first attempt. Each delay varies by up to ±10%
	// so that retries of many deliveries spread out.
	// Default: 5s, 5m, 30m, 2h, 5h, 10h, 10h (about 28 hours in all).
	RetrySchedule []time.Duration

	// Timeout bounds one attempt: connecting, sending and reading the
	// response. Default 15s.
	Timeout time.Duration

	// MaxResponseBytes is how much of a response body is read and stored.
	// Default 64 KiB.
	MaxResponseBytes int64

	// UserAgent is sent with every delivery. Default "Outpost-Webhooks/1".
	UserAgent string
}

// DefaultRetrySchedule is the retry schedule when none is configured.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule = DefaultRetrySchedule
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 64 << 10
	}
	if c.UserAgent == "" {
		c.UserAgent = "Outpost-Webhooks/1"
	}
	return c
}

// TaskTimeout is asynq's deadline for one delivery task. It exceeds the
// HTTP timeout, so asynq never gives up on an attempt that is still running
// and starts a second copy of it.
func (c Config) TaskTimeout() time.Duration { return c.Timeout + 30*time.Second }

// RetryDelay returns the delay before retry n+1 of a delivery: the n-th
// entry of the schedule, or its last entry past the end, with jitter.
func (c Config) RetryDelay(n int) time.Duration {
	d := c.RetrySchedule[min(n, len(c.RetrySchedule)-1)]
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// Enqueuer is the part of asynq.Client the deliverer uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Deliverer fans events out to endpoints and delivers them.
type Deliverer struct {
	db      *gorm.DB
	queue   Enqueuer
	client  *http.Client
	cfg     Config
	logger  *slog.Logger
	nowFunc func() time.Time
}

// NewDeliverer returns a Deliverer. nowFunc is the clock; nil means
// time.Now.
func NewDeliverer(db *gorm.DB, queue Enqueuer, cfg Config, logger *slog.Logger, nowFunc func() time.Time) *Deliverer {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	cfg = cfg.WithDefaults()
	return &Deliverer{
		db:      db,
		queue:   queue,
		client:  newHTTPClient(cfg),
		cfg:     cfg,
		logger:  logger,
		nowFunc: nowFunc,
	}
}

func newHTTPClient(cfg Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Deliveries never go through a proxy taken from the environment.
	transport.Proxy = nil
	transport.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// A redirect is a failed attempt; following it would send the
		// signed body somewhere the endpoint owner did not register.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (d *Deliverer) now() time.Time { return d.nowFunc().UTC().Truncate(time.Microsecond) }

// Fanout creates one pending delivery of event eventID for each enabled
// endpoint subscribed to its type that existed when the event was written,
// and enqueues a delivery task for every pending delivery of the event. It is
// idempotent: rows are unique per event and endpoint, and task IDs are the
// delivery IDs.
func (d *Deliverer) Fanout(ctx context.Context, eventID string) error {
	db := d.db.WithContext(ctx)
	var evt models.Event
	err := db.Select("id", "type", "created_at").Take(&evt, "id = ?", eventID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		d.logger.WarnContext(ctx, "fan-out of unknown event skipped", slog.String("event_id", eventID))
		return nil
	}
	if err != nil {
		return fmt.Errorf("load event: %w", err)
	}

	if err := insertDeliveries(db, evt, d.now()); err != nil {
		return err
	}

	var pending []string
	err = db.Model(&models.WebhookDelivery{}).
		Where("event_id = ? AND status = ?", eventID, models.DeliveryPending).
		Pluck("id", &pending).Error
	if err != nil {
		return fmt.Errorf("list pending deliveries: %w", err)
	}
	for _, id := range pending {
		if err := d.Enqueue(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Enqueue enqueues the delivery task of delivery id. A task with that ID
// that is already queued counts as success.
func (d *Deliverer) Enqueue(ctx context.Context, deliveryID string) error {
	task := tasks.NewWebhookDelivery(deliveryID, len(d.cfg.RetrySchedule), d.cfg.TaskTimeout())
	_, err := d.queue.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue delivery %s: %w", deliveryID, err)
	}
	return nil
}

// Attempt identifies one run of a delivery task.
type Attempt struct {
	// Final reports that the queue will not retry after this run.
	Final bool
}

// Deliver makes one attempt of delivery id and records it. It returns an
// error when the attempt failed and should be retried; a failure on the
// final attempt marks the delivery failed and returns nil.
func (d *Deliverer) Deliver(ctx context.Context, deliveryID string, a Attempt) error {
	dlv, ep, body, err := d.load(ctx, deliveryID)
	if err != nil || dlv == nil {
		return err
	}
	logger := d.logger.With(
		slog.String("delivery_id", dlv.ID),
		slog.String("endpoint_id", dlv.EndpointID),
		slog.String("event_id", dlv.EventID),
	)
	if !ep.Enabled {
		logger.InfoContext(ctx, "delivery dropped: endpoint disabled")
		return d.finish(ctx, dlv, models.DeliveryFailed)
	}

	started := d.now()
	result := d.post(ctx, ep, dlv, body, started)
	attempt := models.WebhookAttempt{
		ID:           models.NewID(models.PrefixAttempt),
		DeliveryID:   dlv.ID,
		Number:       dlv.AttemptCount + 1,
		StartedAt:    started,
		DurationMS:   int(d.nowFunc().Sub(started).Milliseconds()),
		StatusCode:   result.statusCode,
		Error:        result.errText,
		ResponseBody: result.body,
	}

	status := models.DeliveryPending
	switch {
	case result.ok:
		status = models.DeliverySucceeded
	case a.Final:
		status = models.DeliveryFailed
	}
	if err := d.record(ctx, dlv, attempt, status); err != nil {
		return err
	}

	switch status {
	case models.DeliverySucceeded:
		logger.DebugContext(ctx, "delivery succeeded", slog.Int("attempt", attempt.Number))
		return nil
	case models.DeliveryFailed:
		logger.WarnContext(ctx, "delivery failed after its last attempt",
			slog.Int("attempt", attempt.Number),
			slog.String("err", result.errText))
		return nil
	default:
		return fmt.Errorf("attempt %d: %s", attempt.Number, result.errText)
	}
}

// load reads delivery id with its endpoint and event body. It returns a nil
// delivery, and no error, when there is nothing left to do.
func (d *Deliverer) load(ctx context.Context, id string) (*models.WebhookDelivery, *models.WebhookEndpoint, []byte, error) {
	db := d.db.WithContext(ctx)
	var dlv models.WebhookDelivery
	err := db.Take(&dlv, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// The endpoint was deleted with its deliveries.
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load delivery: %w", err)
	}
	if dlv.Status != models.DeliveryPending {
		return nil, nil, nil, nil
	}

	var ep models.WebhookEndpoint
	err = db.Take(&ep, "id = ?", dlv.EndpointID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load webhook endpoint: %w", err)
	}

	var evt models.Event
	if err := db.Select("body").Take(&evt, "id = ?", dlv.EventID).Error; err != nil {
		return nil, nil, nil, fmt.Errorf("load event: %w", err)
	}
	return &dlv, &ep, []byte(evt.Body), nil
}

type postResult struct {
	ok         bool
	statusCode *int
	errText    string
	body       string
}

// post sends one signed request. It never returns the request URL in
// errText, because URLs may carry receivers' tokens.
func (d *Deliverer) post(ctx context.Context, ep *models.WebhookEndpoint, dlv *models.WebhookDelivery, body []byte, at time.Time) postResult {
	headers, err := SignatureHeaders(dlv.EventID, body, at, ep.Secret)
	if err != nil {
		return postResult{errText: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return postResult{errText: "build request: " + describeError(err)}
	}
	req.Header = headers
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set(HeaderEvent, dlv.EventType)
	req.Header.Set(HeaderEventID, dlv.EventID)
	req.Header.Set(HeaderDeliveryID, dlv.ID)

	resp, err := d.client.Do(req)
	if err != nil {
		return postResult{errText: describeError(err)}
	}
	defer resp.Body.Close()

	// A body that breaks off or times out midway leaves what was read; the
	// status code alone decides the outcome.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, d.cfg.MaxResponseBytes))
	code := resp.StatusCode
	res := postResult{statusCode: &code, body: storableText(raw)}
	switch {
	case code >= 200 && code < 300:
		res.ok = true
	case code >= 300 && code < 400:
		res.errText = fmt.Sprintf("HTTP %d redirect to %q not followed", code, resp.Header.Get("Location"))
	default:
		res.errText = fmt.Sprintf("HTTP %d", code)
	}
	return res
}

// record stores attempt and moves the delivery to status, unless another
// run finished the delivery first.
func (d *Deliverer) record(ctx context.Context, dlv *models.WebhookDelivery, attempt models.WebhookAttempt, status models.DeliveryStatus) error {
	return d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&attempt).Error; err != nil {
			return fmt.Errorf("insert delivery attempt: %w", err)
		}
		err := tx.Model(&models.WebhookDelivery{}).
			Where("id = ? AND status = ?", dlv.ID, models.DeliveryPending).
			Updates(map[string]any{
				"status":          status,
				"attempt_count":   gorm.Expr("attempt_count + 1"),
				"last_attempt_at": attempt.StartedAt,
				"updated_at":      d.now(),
			}).Error
		if err != nil {
			return fmt.Errorf("update delivery: %w", err)
		}
		return nil
	})
}

func (d *Deliverer) finish(ctx context.Context, dlv *models.WebhookDelivery, status models.DeliveryStatus) error {
	err := d.db.WithContext(ctx).Model(&models.WebhookDelivery{}).
		Where("id = ? AND status = ?", dlv.ID, models.DeliveryPending).
		Updates(map[string]any{"status": status, "updated_at": d.now()}).Error
	if err != nil {
		return fmt.Errorf("update delivery: %w", err)
	}
	return nil
}

// describeError returns err's message without the request URL that
// url.Error adds.
func describeError(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

// storableText makes a response body safe for a PostgreSQL text column,
// which rejects NUL bytes and invalid UTF-8.
func storableText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}
