package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	svix "github.com/svix/svix-webhooks/go"
)

// verifyStandard checks req with the svix library, an implementation of
// Standard Webhooks independent of this package. svix v1.44.0 reads the
// webhook-id, webhook-timestamp and webhook-signature headers when the
// svix-* headers are absent, so the headers are passed as received. Verify
// also rejects a webhook-timestamp more than five minutes from the real
// clock.
func verifyStandard(t *testing.T, req receivedRequest, secret string) error {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	require.NoError(t, err)
	return wh.Verify(req.body, req.header)
}

// outpostSignatureCount returns the number of v1 entries in the
// X-Outpost-Signature header of req.
func outpostSignatureCount(req receivedRequest) int {
	return strings.Count(req.header.Get(HeaderSignature), "v1=")
}

// standardSignatureCount returns the number of space-separated v1 entries
// in the webhook-signature header of req.
func standardSignatureCount(t *testing.T, req receivedRequest) int {
	t.Helper()
	entries := strings.Fields(req.header.Get(HeaderWebhookSignature))
	for _, entry := range entries {
		require.True(t, strings.HasPrefix(entry, "v1,"), "webhook-signature entry %q", entry)
	}
	return len(entries)
}

func TestStandardWebhooksAcrossRotation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	ep, _, first := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	oldSecret := ep.Secret
	live := newDeliverer(t, e, Config{}, nil)
	const tolerance = 5 * time.Minute

	require.NoError(t, live.Deliver(ctx, first.ID))
	require.Len(t, rcv.received(), 1)
	before := rcv.received()[0]

	t.Run("before rotation", func(t *testing.T) {
		require.Equal(t, 1, outpostSignatureCount(before))
		require.Equal(t, 1, standardSignatureCount(t, before))
		require.NoError(t, verifyStandard(t, before, oldSecret))
		require.NoError(t, VerifySignature(before.header.Get(HeaderSignature), before.body, oldSecret, tolerance, time.Now()))
	})

	t.Run("library rejects forgeries", func(t *testing.T) {
		require.Error(t, verifyStandard(t, before, NewSecret()))
		tampered := before
		tampered.body = bytes.Replace(before.body, []byte("Printer"), []byte("Scanner"), 1)
		require.NotEqual(t, before.body, tampered.body)
		require.Error(t, verifyStandard(t, tampered, oldSecret))
	})

	rotatedAt := time.Now().UTC().Truncate(time.Second)
	const grace = 2 * time.Minute
	rotated, err := privateEndpoints(e.db, func() time.Time { return rotatedAt }).RotateSecret(ctx, ep.ID, grace)
	require.NoError(t, err)
	newSecret := rotated.Secret
	require.NotEqual(t, oldSecret, newSecret)

	_, during := newEventDelivery(t, e, ep.ID)
	require.NoError(t, live.Deliver(ctx, during.ID))
	require.Len(t, rcv.received(), 2)
	inGrace := rcv.received()[1]

	t.Run("during grace period", func(t *testing.T) {
		require.Equal(t, 2, outpostSignatureCount(inGrace))
		require.Equal(t, 2, standardSignatureCount(t, inGrace))
		require.NoError(t, verifyStandard(t, inGrace, oldSecret), "old secret")
		require.NoError(t, verifyStandard(t, inGrace, newSecret), "new secret")
		header := inGrace.header.Get(HeaderSignature)
		require.NoError(t, VerifySignature(header, inGrace.body, oldSecret, tolerance, time.Now()), "old secret")
		require.NoError(t, VerifySignature(header, inGrace.body, newSecret, tolerance, time.Now()), "new secret")
		require.Error(t, verifyStandard(t, inGrace, NewSecret()), "unrelated secret")
	})

	// The pinned time is one minute past the grace period, well within the
	// five minutes that svix allows between webhook-timestamp and now.
	afterAt := rotatedAt.Add(grace + time.Minute)
	pinned := newDeliverer(t, e, Config{}, func() time.Time { return afterAt })
	_, late := newEventDelivery(t, e, ep.ID)
	require.NoError(t, pinned.Deliver(ctx, late.ID))
	require.Len(t, rcv.received(), 3)
	after := rcv.received()[2]

	t.Run("after grace period", func(t *testing.T) {
		require.Equal(t, strconv.FormatInt(afterAt.Unix(), 10), after.header.Get(HeaderWebhookTimestamp))
		require.Equal(t, 1, outpostSignatureCount(after))
		require.Equal(t, 1, standardSignatureCount(t, after))
		require.NoError(t, verifyStandard(t, after, newSecret), "new secret")
		require.Error(t, verifyStandard(t, after, oldSecret), "old secret")
		header := after.header.Get(HeaderSignature)
		require.NoError(t, VerifySignature(header, after.body, newSecret, tolerance, afterAt), "new secret")
		require.Error(t, VerifySignature(header, after.body, oldSecret, tolerance, afterAt), "old secret")
	})
}

func TestStandardWebhooksRetrySignedAgain(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var calls atomic.Int32
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ep, evt, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	firstAt := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Second)
	secondAt := firstAt.Add(20 * time.Second)
	clock := newManualClock(firstAt)
	d := newDeliverer(t, e, Config{RetrySchedule: []time.Duration{time.Second}}, clock.Now)

	err := d.Deliver(ctx, dlv.ID)
	_, retry := RetryDelay(err)
	require.True(t, retry, "want a RetryError, got %v", err)
	clock.Set(secondAt)
	require.NoError(t, d.Deliver(ctx, dlv.ID))

	reqs := rcv.received()
	require.Len(t, reqs, 2)
	require.Equal(t, 2, loadDelivery(t, e.db, dlv.ID).AttemptCount)

	t.Run("each attempt verifies", func(t *testing.T) {
		for i, req := range reqs {
			require.NoError(t, verifyStandard(t, req, ep.Secret), "attempt %d", i+1)
			err := VerifySignature(req.header.Get(HeaderSignature), req.body, ep.Secret, 5*time.Minute, time.Now())
			require.NoError(t, err, "attempt %d", i+1)
		}
	})

	t.Run("fresh timestamps", func(t *testing.T) {
		require.Equal(t, strconv.FormatInt(firstAt.Unix(), 10), reqs[0].header.Get(HeaderWebhookTimestamp))
		require.Equal(t, strconv.FormatInt(secondAt.Unix(), 10), reqs[1].header.Get(HeaderWebhookTimestamp))
		for i, req := range reqs {
			wantPrefix := "t=" + req.header.Get(HeaderWebhookTimestamp) + ","
			require.True(t, strings.HasPrefix(req.header.Get(HeaderSignature), wantPrefix),
				"attempt %d: %s", i+1, req.header.Get(HeaderSignature))
		}
	})

	t.Run("same message id", func(t *testing.T) {
		require.Equal(t, evt.ID, reqs[0].header.Get(HeaderWebhookID))
		require.Equal(t, evt.ID, reqs[1].header.Get(HeaderWebhookID))
	})

	t.Run("identical body", func(t *testing.T) {
		require.Equal(t, evt.Body, string(reqs[0].body))
		require.Equal(t, reqs[0].body, reqs[1].body)
	})

	t.Run("body keeps event time", func(t *testing.T) {
		var envelope struct {
			Timestamp time.Time `json:"timestamp"`
		}
		require.NoError(t, json.Unmarshal(reqs[1].body, &envelope))
		require.True(t, envelope.Timestamp.Equal(evt.CreatedAt), "body timestamp %s, event created %s",
			envelope.Timestamp, evt.CreatedAt)
		require.NotEqual(t, secondAt.Unix(), envelope.Timestamp.Unix())
	})
}

func TestRotateTwiceRetiresOldest(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	ep, _, dlv := newPendingDelivery(t, e, rcv.srv.URL+"/hooks")
	eps := privateEndpoints(e.db, nil)
	second, err := eps.RotateSecret(ctx, ep.ID, time.Hour)
	require.NoError(t, err)
	third, err := eps.RotateSecret(ctx, ep.ID, time.Hour)
	require.NoError(t, err)

	require.NoError(t, newDeliverer(t, e, Config{}, nil).Deliver(ctx, dlv.ID))
	require.Len(t, rcv.received(), 1)
	req := rcv.received()[0]

	require.Equal(t, 2, outpostSignatureCount(req))
	require.Equal(t, 2, standardSignatureCount(t, req))
	require.NoError(t, verifyStandard(t, req, third.Secret), "current secret")
	require.NoError(t, verifyStandard(t, req, second.Secret), "secret replaced by the second rotation")
	require.Error(t, verifyStandard(t, req, ep.Secret), "secret replaced by the first rotation")
}
