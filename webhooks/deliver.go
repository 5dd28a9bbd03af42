package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/tasks"
)

// Error classes of a failed attempt, stored with the attempt and used as a
// metrics label.
const (
	ClassDNS        = "dns"
	ClassConnect    = "connect"
	ClassTLS        = "tls"
	ClassTimeout    = "timeout"
	ClassHTTPStatus = "http_status"
	ClassBlocked    = "blocked"
	// ClassInternal marks an attempt that failed inside Outpost, before a
	// request was sent, such as a secret that cannot be decoded.
	ClassInternal = "internal"
)

// Enqueuer is the part of asynq.Client the deliverer uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// TaskInspector is the part of asynq.Inspector the deliverer uses: to find
// a task that asynq archived after its own retries ran out, and to remove a
// queued task so that its TaskID can be enqueued again.
type TaskInspector interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
}

// Deps are the Deliverer's collaborators. Redis, Tasks and Metrics may be
// nil: without Redis there is no per-endpoint in-flight limit, without Tasks
// neither redelivery nor the reconciler can replace a task still in the
// queue, and without Metrics nothing is measured.
type Deps struct {
	DB      *gorm.DB
	Queue   Enqueuer
	Redis   redis.UniversalClient
	Tasks   TaskInspector
	Metrics *Metrics
	Logger  *slog.Logger
	NowFunc func() time.Time
}

// Deliverer fans events out to endpoints, delivers them, and redelivers or
// reconciles deliveries.
type Deliverer struct {
	db      *gorm.DB
	queue   Enqueuer
	tasks   TaskInspector
	limiter *endpointLimiter
	metrics *Metrics
	client  *http.Client
	cfg     Config
	logger  *slog.Logger
	nowFunc func() time.Time
}

// NewDeliverer returns a Deliverer configured by cfg, which must pass
// Validate.
func NewDeliverer(deps Deps, cfg Config) *Deliverer {
	cfg = cfg.WithDefaults()
	d := &Deliverer{
		db:      deps.DB,
		queue:   deps.Queue,
		tasks:   deps.Tasks,
		metrics: deps.Metrics,
		client:  newHTTPClient(cfg),
		cfg:     cfg,
		logger:  deps.Logger,
		nowFunc: deps.NowFunc,
	}
	if d.nowFunc == nil {
		d.nowFunc = time.Now
	}
	if deps.Redis != nil {
		d.limiter = &endpointLimiter{rdb: deps.Redis, limit: cfg.MaxInFlightPerEndpoint, lease: cfg.TaskTimeout}
	}
	return d
}

func newHTTPClient(cfg Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Deliveries never go through a proxy taken from the environment: the
	// proxy would dial on Outpost's behalf and bypass the SSRF guard.
	transport.Proxy = nil
	transport.MaxIdleConnsPerHost = 16
	if !cfg.AllowPrivateNetworks {
		transport.DialContext = guardedDialer(cfg.Timeout).DialContext
	}
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
// marks the event fanned out, and enqueues a delivery task for every pending
// delivery of the event. It is idempotent: rows are unique per event and
// endpoint, and task IDs are the delivery IDs.
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

	now := d.now()
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := insertDeliveries(tx, evt, now); err != nil {
			return err
		}
		return markFannedOut(tx, evt.ID, now)
	})
	if err != nil {
		return err
	}
	pending, err := pendingDeliveries(db, eventID)
	if err != nil {
		return err
	}
	for _, id := range pending {
		if err := d.Enqueue(ctx, id, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// deliveryMaxRetry is asynq's retry limit for a delivery task. Attempts
// are counted in PostgreSQL, so this only stops a task that keeps failing
// before it can attempt, such as while the database is down. asynq's
// growing backoff spreads 100 retries over weeks.
const deliveryMaxRetry = 100

func (d *Deliverer) deliveryTask(id string) *asynq.Task {
	return tasks.NewWebhookDelivery(id, deliveryMaxRetry, d.cfg.TaskTimeout)
}

// Enqueue enqueues the delivery task of delivery id, to run at processAt or
// at once when processAt is zero. A live task with that ID counts as
// success.
func (d *Deliverer) Enqueue(ctx context.Context, deliveryID string, processAt time.Time) error {
	var opts []asynq.Option
	if !processAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(processAt))
	}
	if _, err := d.enqueueTask(ctx, d.deliveryTask(deliveryID), tasks.QueueWebhooks, deliveryID, opts...); err != nil {
		return fmt.Errorf("enqueue delivery %s: %w", deliveryID, err)
	}
	return nil
}

// enqueueTask enqueues task, whose TaskID is id, and reports whether it
// did. A live task with that ID counts as already queued. An archived one,
// which asynq keeps after its own retries ran out and which would block the
// ID forever, is replaced, because PostgreSQL still records the work as
// pending.
func (d *Deliverer) enqueueTask(ctx context.Context, task *asynq.Task, queue, id string, opts ...asynq.Option) (bool, error) {
	_, err := d.queue.EnqueueContext(ctx, task, opts...)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, err
	}
	if d.tasks == nil {
		return false, nil
	}
	info, err := d.tasks.GetTaskInfo(queue, id)
	if err != nil || info.State != asynq.TaskStateArchived {
		return false, nil
	}
	if err := d.tasks.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return false, fmt.Errorf("remove archived task %s: %w", id, err)
	}
	_, err = d.queue.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	return err == nil, err
}

// Deliver makes one attempt of delivery id and records it. It returns a
// *RetryError when the delivery should run again later, and nil once the
// delivery succeeded or failed for good.
func (d *Deliverer) Deliver(ctx context.Context, deliveryID string) error {
	dlv, ep, evt, err := d.load(ctx, deliveryID)
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
		return d.abandon(ctx, dlv, "endpoint disabled")
	}

	if d.limiter != nil {
		ok, err := d.acquireSlot(ctx, ep.ID, dlv.ID)
		if err != nil {
			return err
		}
		if !ok {
			return &RetryError{Delay: busyDelay(), Busy: true}
		}
		defer func() {
			if err := d.limiter.release(context.WithoutCancel(ctx), ep.ID, dlv.ID); err != nil {
				logger.WarnContext(ctx, "release endpoint slot", slog.String("err", err.Error()))
			}
		}()
	}

	started := d.now()
	result := d.post(ctx, ep, dlv, []byte(evt.Body), started)
	attempt := models.WebhookAttempt{
		ID:             models.NewID(models.PrefixAttempt),
		DeliveryID:     dlv.ID,
		Number:         dlv.AttemptCount + 1,
		StartedAt:      started,
		DurationMS:     int(d.nowFunc().Sub(started).Milliseconds()),
		StatusCode:     result.statusCode,
		Error:          result.errText,
		ErrorClass:     result.class,
		ResponseBody:   result.body,
		RequestHeaders: result.headers,
	}
	out := d.decide(dlv, ep, result, started)
	if err := d.record(ctx, dlv, ep, attempt, out); err != nil {
		return err
	}
	d.metrics.observeAttempt(result, attempt.DurationMS, out.status, d.nowFunc().Sub(evt.CreatedAt))

	switch out.status {
	case models.DeliverySucceeded:
		logger.DebugContext(ctx, "delivery succeeded", slog.Int("attempt", attempt.Number))
		return nil
	case models.DeliveryFailed:
		logger.WarnContext(ctx, "delivery failed for good",
			slog.Int("attempt", attempt.Number),
			slog.String("error_class", result.class),
			slog.String("err", result.errText))
		if out.disableReason != "" {
			logger.WarnContext(ctx, "endpoint disabled", slog.String("reason", out.disableReason))
		}
		return nil
	default:
		return &RetryError{Delay: out.delay, Err: fmt.Errorf("attempt %d: %s", attempt.Number, result.errText)}
	}
}

// Waiting for a slot of a busy endpoint: a delivery polls for up to
// slotWait while the endpoint's oldest attempt in flight is younger than
// slowAttempt, because a fast endpoint frees a slot within milliseconds.
// Behind a slow endpoint it gives its worker back at once and runs again
// after busyDelay.
const (
	slotWait    = 100 * time.Millisecond
	slowAttempt = 500 * time.Millisecond
)

// acquireSlot takes one of the endpoint's in-flight slots and reports
// whether it got one.
func (d *Deliverer) acquireSlot(ctx context.Context, endpointID, deliveryID string) (bool, error) {
	deadline := time.Now().Add(slotWait)
	for {
		ok, oldest, err := d.limiter.acquire(ctx, endpointID, deliveryID)
		if ok || err != nil {
			return ok, err
		}
		if oldest >= slowAttempt || time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// outcome is the result of one attempt under the retry policy.
type outcome struct {
	status        models.DeliveryStatus
	delay         time.Duration // before the next attempt, when status is pending
	disableReason string        // set when the endpoint must be disabled
	failure       bool
}

// decide applies the retry policy to an attempt's result.
func (d *Deliverer) decide(dlv *models.WebhookDelivery, ep *models.WebhookEndpoint, r postResult, at time.Time) outcome {
	if r.ok {
		return outcome{status: models.DeliverySucceeded}
	}
	out := outcome{status: models.DeliveryPending, failure: true}
	if r.statusCode != nil && *r.statusCode == http.StatusGone {
		out.status = models.DeliveryFailed
		out.disableReason = "the endpoint answered 410 Gone"
		return out
	}
	if ep.FailingSince != nil && at.Sub(*ep.FailingSince) >= d.cfg.DisableAfter {
		out.status = models.DeliveryFailed
		out.disableReason = fmt.Sprintf("every attempt failed since %s", ep.FailingSince.Format(time.RFC3339))
		return out
	}

	// Attempts of the current series, this one included: a manual
	// redelivery starts a new series with the whole schedule.
	n := dlv.AttemptCount + 1 - dlv.RetryBase
	if n > len(d.cfg.RetrySchedule) {
		out.status = models.DeliveryFailed
		return out
	}
	out.delay = d.cfg.RetryDelay(n - 1)
	if r.retryAfter > 0 {
		out.delay = min(max(r.retryAfter, time.Second), d.cfg.MaxRetryAfter)
	}
	return out
}

// load reads delivery id with its endpoint and event. It returns a nil
// delivery, and no error, when there is nothing left to do.
func (d *Deliverer) load(ctx context.Context, id string) (*models.WebhookDelivery, *models.WebhookEndpoint, *models.Event, error) {
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
	if err := db.Select("body", "created_at").Take(&evt, "id = ?", dlv.EventID).Error; err != nil {
		return nil, nil, nil, fmt.Errorf("load event: %w", err)
	}
	return &dlv, &ep, &evt, nil
}

type postResult struct {
	ok         bool
	statusCode *int
	errText    string
	class      string
	body       string
	headers    map[string]string
	retryAfter time.Duration
}

// post sends one signed request. It never puts the request URL in errText,
// because URLs may carry receivers' tokens.
func (d *Deliverer) post(ctx context.Context, ep *models.WebhookEndpoint, dlv *models.WebhookDelivery, body []byte, at time.Time) postResult {
	headers, err := SignatureHeaders(dlv.EventID, body, at, activeSecrets(ep, at)...)
	if err != nil {
		return postResult{errText: err.Error(), class: ClassInternal}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return postResult{errText: "build request: " + describeError(err), class: ClassInternal}
	}
	req.Header = headers
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set(HeaderEvent, dlv.EventType)
	req.Header.Set(HeaderEventID, dlv.EventID)
	req.Header.Set(HeaderDeliveryID, dlv.ID)
	sent := flattenHeaders(req.Header)

	resp, err := d.client.Do(req)
	if err != nil {
		return postResult{errText: describeError(err), class: classify(err), headers: sent}
	}
	defer resp.Body.Close()

	// A body that breaks off or times out midway leaves what was read; the
	// status code alone decides the outcome.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, d.cfg.MaxResponseBytes))
	code := resp.StatusCode
	res := postResult{statusCode: &code, body: storableText(raw), headers: sent}
	switch {
	case code >= 200 && code < 300:
		res.ok = true
	case code >= 300 && code < 400:
		res.class = ClassHTTPStatus
		res.errText = fmt.Sprintf("HTTP %d redirect to %q not followed", code, resp.Header.Get("Location"))
	default:
		res.class = ClassHTTPStatus
		res.errText = fmt.Sprintf("HTTP %d", code)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), at)
		}
	}
	return res
}

// activeSecrets returns the secrets that sign at time at: the current one,
// then the one a rotation replaced, until it expires.
func activeSecrets(ep *models.WebhookEndpoint, at time.Time) []string {
	secrets := []string{ep.Secret}
	if ep.PreviousSecret != "" && ep.PreviousSecretExpiresAt != nil && at.Before(*ep.PreviousSecretExpiresAt) {
		secrets = append(secrets, ep.PreviousSecret)
	}
	return secrets
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date,
// and returns zero when it is absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// For a value beyond int64, ParseInt returns the largest int64 with
	// ErrRange. Seconds beyond time.Duration's range saturate instead of
	// overflowing to a negative delay, and decide clamps them.
	if secs, err := strconv.ParseInt(v, 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && secs >= 0 {
		return time.Duration(min(secs, math.MaxInt64/int64(time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// classify returns the error class of a request that got no response.
func classify(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	switch {
	case isBlocked(err):
		return ClassBlocked
	case errors.As(err, &dnsErr):
		return ClassDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr), errors.As(err, &invalidErr),
		// net/http replaces the RecordHeaderError of a plain HTTP response to
		// a TLS handshake with ErrSchemeMismatch.
		errors.Is(err, http.ErrSchemeMismatch):
		return ClassTLS
	default:
		return ClassConnect
	}
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

func flattenHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}
