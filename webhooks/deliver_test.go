package webhooks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/tasks"
)

// receivedRequest is one request that a receiver recorded.
type receivedRequest struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint on loopback that records every request
// before handler writes the response.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []receivedRequest
}

func newReceiver(t *testing.T, handler http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.requests = append(r.requests, receivedRequest{
			method: req.Method,
			path:   req.URL.Path,
			header: req.Header.Clone(),
			body:   body,
		})
		r.mu.Unlock()
		handler(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []receivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedRequest(nil), r.requests...)
}

// newPendingDelivery creates an endpoint for url, a ticket.created event and
// a pending delivery of the event to the endpoint.
func newPendingDelivery(t *testing.T, e env, url string) (models.WebhookEndpoint, models.Event, models.WebhookDelivery) {
	t.Helper()
	ep, err := privateEndpoints(e.db, futureClock).Create(context.Background(), NewEndpoint{
		URL:    url,
		Events: []string{AllEvents},
	})
	require.NoError(t, err)
	evt := appendEvent(t, e.db, time.Now(), outbox.TicketCreated)
	dlv := insertDelivery(t, e, ep.ID, evt, time.Now())
	return ep, evt, dlv
}

func newDeliverer(t *testing.T, e env, cfg Config, nowFunc func() time.Time) *Deliverer {
	t.Helper()
	cfg.AllowPrivateNetworks = true
	return NewDeliverer(Deps{DB: e.db, Queue: e.queue, Logger: testenv.Logger(t), NowFunc: nowFunc}, cfg)
}

// closedPortAddr returns a loopback address where nothing listens.
func closedPortAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// pendingTaskCounts returns how many pending tasks of the webhooks queue
// have each task ID.
func pendingTaskCounts(t *testing.T, e env) map[string]int {
	t.Helper()
	counts := map[string]int{}
	const pageSize = 100
	for page := 1; ; page++ {
		infos, err := e.inspector.ListPendingTasks(tasks.QueueWebhooks, asynq.PageSize(pageSize), asynq.Page(page))
		require.NoError(t, err)
		for _, info := range infos {
			counts[info.ID]++
		}
		if len(infos) < pageSize {
			return counts
		}
	}
}

func TestFanoutSubscribedEndpoints(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Microsecond)
	earlier := privateEndpoints(e.db, func() time.Time { return at.Add(-time.Minute) })
	later := privateEndpoints(e.db, func() time.Time { return at.Add(time.Minute) })

	create := func(eps *Endpoints, events ...string) string {
		ep, err := eps.Create(ctx, NewEndpoint{URL: "http://127.0.0.1:9/hooks", Events: events})
		require.NoError(t, err)
		return ep.ID
	}
	star := create(earlier, AllEvents)
	matching := create(earlier, outbox.MessageCreated, outbox.TicketResolved)
	otherType := create(earlier, outbox.MessageCreated)
	disabled := create(earlier, outbox.TicketResolved)
	_, err := earlier.Update(ctx, disabled, EndpointPatch{Enabled: outpost.Value(false)})
	require.NoError(t, err)
	late := create(later, AllEvents)
	mine := []string{star, matching, otherType, disabled, late}

	evt := appendEvent(t, e.db, at, outbox.TicketResolved)
	d := newDeliverer(t, e, Config{}, nil)

	deliveriesByEndpoint := func() map[string]models.WebhookDelivery {
		var rows []models.WebhookDelivery
		err := e.db.Where("event_id = ? AND endpoint_id IN ?", evt.ID, mine).Find(&rows).Error
		require.NoError(t, err)
		out := map[string]models.WebhookDelivery{}
		for _, row := range rows {
			require.NotContains(t, out, row.EndpointID, "two deliveries to one endpoint")
			out[row.EndpointID] = row
		}
		return out
	}

	require.NoError(t, d.Fanout(ctx, evt.ID))
	first := deliveriesByEndpoint()

	t.Run("one row per subscriber", func(t *testing.T) {
		require.Len(t, first, 2)
		require.Contains(t, first, star)
		require.Contains(t, first, matching)
		for _, dlv := range first {
			require.Equal(t, models.DeliveryPending, dlv.Status)
			require.Equal(t, outbox.TicketResolved, dlv.EventType)
			require.Zero(t, dlv.AttemptCount)
		}
	})

	t.Run("one task per row", func(t *testing.T) {
		counts := pendingTaskCounts(t, e)
		for _, dlv := range first {
			require.Equal(t, 1, counts[dlv.ID], "pending tasks of delivery %s", dlv.ID)
			info, err := e.inspector.GetTaskInfo(tasks.QueueWebhooks, dlv.ID)
			require.NoError(t, err)
			require.Equal(t, tasks.TypeWebhookDelivery, info.Type)
			var payload tasks.WebhookDeliveryPayload
			require.NoError(t, tasks.Decode(asynq.NewTask(info.Type, info.Payload), &payload))
			require.Equal(t, dlv.ID, payload.DeliveryID)
		}
	})

	require.NoError(t, d.Fanout(ctx, evt.ID))

	t.Run("second run adds no rows", func(t *testing.T) {
		second := deliveriesByEndpoint()
		require.Len(t, second, 2)
		require.Equal(t, first[star].ID, second[star].ID)
		require.Equal(t, first[matching].ID, second[matching].ID)
	})

	t.Run("second run adds no tasks", func(t *testing.T) {
		counts := pendingTaskCounts(t, e)
		for _, dlv := range first {
			require.Equal(t, 1, counts[dlv.ID], "pending tasks of delivery %s", dlv.ID)
		}
	})
}

func TestFanoutUnknownEvent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := newDeliverer(t, e, Config{}, nil)
	require.NoError(t, d.Fanout(context.Background(), models.NewID(models.PrefixEvent)))
}

func TestEnqueueTwiceQueuesOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	cfg := Config{RetrySchedule: []time.Duration{time.Second, time.Minute, time.Hour}, Timeout: 10 * time.Second}
	d := newDeliverer(t, e, cfg, nil)
	id := models.NewID(models.PrefixDelivery)

	require.NoError(t, d.Enqueue(context.Background(), id, time.Time{}))
	require.NoError(t, d.Enqueue(context.Background(), id, time.Time{}))

	require.Equal(t, 1, pendingTaskCounts(t, e)[id])
	info, err := e.inspector.GetTaskInfo(tasks.QueueWebhooks, id)
	require.NoError(t, err)
	require.Equal(t, tasks.TypeWebhookDelivery, info.Type)
	require.Equal(t, deliveryMaxRetry, info.MaxRetry, "attempts are counted in PostgreSQL, so asynq only backs them up")
	require.Equal(t, 40*time.Second, info.Timeout)
}

func TestDeliverSuccess(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "thanks")
	})
	ep, evt, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	// Each clock reading advances one second, so the attempt lasts exactly
	// one second.
	start := time.Now().UTC().Truncate(time.Second)
	d := newDeliverer(t, e, Config{}, newStepClock(start, time.Second).Now)

	require.NoError(t, d.Deliver(context.Background(), dlv.ID))

	reqs := rcv.received()
	require.Len(t, reqs, 1)
	req := reqs[0]

	t.Run("request", func(t *testing.T) {
		require.Equal(t, http.MethodPost, req.method)
		require.Equal(t, "/hooks", req.path)
		require.Equal(t, evt.Body, string(req.body))
		require.Equal(t, "application/json", req.header.Get("Content-Type"))
		require.Equal(t, "Outpost-Webhooks/1", req.header.Get("User-Agent"))
		require.Equal(t, outbox.TicketCreated, req.header.Get(HeaderEvent))
		require.Equal(t, evt.ID, req.header.Get(HeaderEventID))
		require.Equal(t, dlv.ID, req.header.Get(HeaderDeliveryID))
	})

	t.Run("signatures", func(t *testing.T) {
		ts := strconv.FormatInt(start.Unix(), 10)
		require.Equal(t, evt.ID, req.header.Get(HeaderWebhookID))
		require.Equal(t, ts, req.header.Get(HeaderWebhookTimestamp))
		require.Equal(t, standardSignature(t, ep.Secret, evt.ID, ts, req.body), req.header.Get(HeaderWebhookSignature))
		require.NoError(t, VerifySignature(req.header.Get(HeaderSignature), req.body, ep.Secret, 5*time.Minute, start))
	})

	t.Run("delivery row", func(t *testing.T) {
		got := loadDelivery(t, e.db, dlv.ID)
		require.Equal(t, models.DeliverySucceeded, got.Status)
		require.Equal(t, 1, got.AttemptCount)
		require.NotNil(t, got.LastAttemptAt)
		require.True(t, got.LastAttemptAt.Equal(start), "lastAttemptAt %s", got.LastAttemptAt)
	})

	t.Run("attempt row", func(t *testing.T) {
		got := loadDelivery(t, e.db, dlv.ID)
		require.Len(t, got.Attempts, 1)
		a := got.Attempts[0]
		require.Equal(t, 1, a.Number)
		require.NotNil(t, a.StatusCode)
		require.Equal(t, http.StatusOK, *a.StatusCode)
		require.Equal(t, 1000, a.DurationMS)
		require.True(t, a.StartedAt.Equal(start), "startedAt %s", a.StartedAt)
		require.Empty(t, a.Error)
		require.Equal(t, "thanks", a.ResponseBody)
	})

	t.Run("not sent again", func(t *testing.T) {
		require.NoError(t, d.Deliver(context.Background(), dlv.ID))
		require.Len(t, rcv.received(), 1)
	})
}

func TestDeliverServerError(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "boom")
	})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newDeliverer(t, e, Config{RetrySchedule: []time.Duration{time.Second}}, nil)
	ctx := context.Background()

	t.Run("retryable attempt", func(t *testing.T) {
		err := d.Deliver(ctx, dlv.ID)
		require.ErrorContains(t, err, "HTTP 500")

		got := loadDelivery(t, e.db, dlv.ID)
		require.Equal(t, models.DeliveryPending, got.Status)
		require.Equal(t, 1, got.AttemptCount)
		require.Len(t, got.Attempts, 1)
		require.NotNil(t, got.Attempts[0].StatusCode)
		require.Equal(t, http.StatusInternalServerError, *got.Attempts[0].StatusCode)
		require.Equal(t, "HTTP 500", got.Attempts[0].Error)
		require.Equal(t, "boom", got.Attempts[0].ResponseBody)
	})

	t.Run("final attempt", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, dlv.ID))

		got := loadDelivery(t, e.db, dlv.ID)
		require.Equal(t, models.DeliveryFailed, got.Status)
		require.Equal(t, 2, got.AttemptCount)
		require.Len(t, got.Attempts, 2)
		require.Equal(t, 1, got.Attempts[0].Number)
		require.Equal(t, 2, got.Attempts[1].Number)
	})

	t.Run("failed not retried", func(t *testing.T) {
		require.NoError(t, d.Deliver(ctx, dlv.ID))
		require.Len(t, rcv.received(), 2)
	})
}

func TestDeliverRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var targetHits int
	var mu sync.Mutex
	var target string
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			mu.Lock()
			targetHits++
			mu.Unlock()
			return
		}
		http.Redirect(w, r, target, http.StatusFound)
	})
	target = rcv.srv.URL + "/target"
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newDeliverer(t, e, Config{}, nil)

	err := d.Deliver(context.Background(), dlv.ID)
	require.ErrorContains(t, err, target)

	mu.Lock()
	require.Zero(t, targetHits, "redirect target requested")
	mu.Unlock()
	require.Len(t, rcv.received(), 1)

	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliveryPending, got.Status)
	require.Len(t, got.Attempts, 1)
	require.NotNil(t, got.Attempts[0].StatusCode)
	require.Equal(t, http.StatusFound, *got.Attempts[0].StatusCode)
	require.Contains(t, got.Attempts[0].Error, target)
}

func TestDeliverTruncatesResponseBody(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 4096))
	})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newDeliverer(t, e, Config{MaxResponseBytes: 1000}, nil)

	require.NoError(t, d.Deliver(context.Background(), dlv.ID))

	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliverySucceeded, got.Status)
	require.Len(t, got.Attempts, 1)
	require.Equal(t, strings.Repeat("x", 1000), got.Attempts[0].ResponseBody)
}

func TestDeliverStoresBinaryResponse(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("ok\x00\xff\xfe done"))
	})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newDeliverer(t, e, Config{}, nil)

	require.NoError(t, d.Deliver(context.Background(), dlv.ID))

	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliverySucceeded, got.Status)
	require.Len(t, got.Attempts, 1)
	body := got.Attempts[0].ResponseBody
	require.True(t, utf8.ValidString(body), "body %q", body)
	require.NotContains(t, body, "\x00")
	require.Equal(t, "ok\uFFFD done", body)
}

func TestDeliverConnectionRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, _, dlv := newPendingDelivery(t, e, "http://"+closedPortAddr(t)+"/hooks?token=secret123")
	d := newDeliverer(t, e, Config{}, nil)

	err := d.Deliver(context.Background(), dlv.ID)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret123")

	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliveryPending, got.Status)
	require.Equal(t, 1, got.AttemptCount)
	require.Len(t, got.Attempts, 1)
	a := got.Attempts[0]
	require.Nil(t, a.StatusCode)
	require.Contains(t, a.Error, "connection refused")
	require.NotContains(t, a.Error, "secret123")
	require.NotContains(t, a.Error, "token=")
}

func TestDeliverTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	release := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// Cleanups run last-in first-out, so the handler returns before the
	// server closes.
	t.Cleanup(func() { close(release) })
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	const timeout = 300 * time.Millisecond
	d := newDeliverer(t, e, Config{Timeout: timeout}, nil)

	err := d.Deliver(context.Background(), dlv.ID)
	require.ErrorContains(t, err, "timeout")

	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliveryPending, got.Status)
	require.Len(t, got.Attempts, 1)
	a := got.Attempts[0]
	require.Nil(t, a.StatusCode)
	require.Contains(t, a.Error, "timeout")
	require.GreaterOrEqual(t, a.DurationMS, int(timeout.Milliseconds()))
	require.Less(t, a.DurationMS, 10*int(timeout.Milliseconds()))
}

func TestDeliverDisabledEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	ep, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	_, err := privateEndpoints(e.db, nil).Update(context.Background(), ep.ID, EndpointPatch{Enabled: outpost.Value(false)})
	require.NoError(t, err)
	d := newDeliverer(t, e, Config{}, nil)

	require.NoError(t, d.Deliver(context.Background(), dlv.ID))

	require.Empty(t, rcv.received())
	got := loadDelivery(t, e.db, dlv.ID)
	require.Equal(t, models.DeliveryFailed, got.Status)
	require.Zero(t, got.AttemptCount)
	require.Empty(t, got.Attempts)
}

func TestDeliverDeletedEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	ep, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	require.NoError(t, privateEndpoints(e.db, nil).Delete(context.Background(), ep.ID))
	d := newDeliverer(t, e, Config{}, nil)

	require.NoError(t, d.Deliver(context.Background(), dlv.ID))
	require.Empty(t, rcv.received())
}

func TestDeliverCanceledContext(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	_, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	d := newDeliverer(t, e, Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := d.Deliver(ctx, dlv.ID)
	require.True(t, errors.Is(err, context.Canceled), "want context.Canceled, got %v", err)
	require.Empty(t, rcv.received())
}

func TestRetryDelayJitter(t *testing.T) {
	t.Parallel()
	cfg := Config{RetrySchedule: []time.Duration{10 * time.Second, time.Minute, time.Hour}}

	cases := []struct {
		name  string
		retry int
		base  time.Duration
	}{
		{"first entry", 0, 10 * time.Second},
		{"middle entry", 1, time.Minute},
		{"last entry", 2, time.Hour},
		{"past the end", 3, time.Hour},
		{"far past the end", 40, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 500 {
				got := cfg.RetryDelay(tc.retry)
				require.GreaterOrEqual(t, got, tc.base-tc.base/10)
				require.LessOrEqual(t, got, tc.base+tc.base/10)
				seen[got] = true
			}
			require.Greater(t, len(seen), 1, "500 delays without jitter")
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg := Config{}.WithDefaults()
	require.Equal(t, DefaultRetrySchedule, cfg.RetrySchedule)
	require.Equal(t, 15*time.Second, cfg.Timeout)
	require.Equal(t, int64(64<<10), cfg.MaxResponseBytes)
	require.Equal(t, "Outpost-Webhooks/1", cfg.UserAgent)
	require.Equal(t, 45*time.Second, cfg.TaskTimeout)

	custom := Config{Timeout: time.Second, UserAgent: "Custom/2"}.WithDefaults()
	require.Equal(t, time.Second, custom.Timeout)
	require.Equal(t, "Custom/2", custom.UserAgent)
}
