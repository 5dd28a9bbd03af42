package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/webhooks"
)

func TestVerifyAcceptsOutpostSignature(t *testing.T) {
	secret, other := webhooks.NewSecret(), webhooks.NewSecret()
	body := []byte(`{"id":"evt_1","event":"ticket.created"}`)
	now := time.Unix(1_800_000_000, 0)

	h, err := webhooks.SignatureHeaders("evt_1", body, now, secret)
	require.NoError(t, err)
	header := h.Get(webhooks.HeaderSignature)

	require.NoError(t, verify(header, body, secret, now))
	require.Error(t, verify(header, body, other, now), "wrong secret")
	require.Error(t, verify(header, append(body, ' '), secret, now), "changed body")
	require.Error(t, verify(header, body, secret, now.Add(10*time.Minute)), "stale timestamp")
	require.Error(t, verify("v1=00", body, secret, now), "missing timestamp")

	rotated, err := webhooks.SignatureHeaders("evt_1", body, now, other, secret)
	require.NoError(t, err)
	require.NoError(t, verify(rotated.Get(webhooks.HeaderSignature), body, secret, now), "any v1 entry may match")
}
