package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hmacHex is the hex HMAC-SHA256 of message keyed by key, computed here
// without the package's helpers.
func hmacHex(key, message string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(message))
	return hex.EncodeToString(h.Sum(nil))
}

// standardSignature is the Standard Webhooks signature entry of body,
// computed here without the package's helpers.
func standardSignature(t *testing.T, secret, msgID, timestamp string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID + "." + timestamp + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignatureHeadersOutpostScheme(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	body := []byte(`{"id":"evt_1","event":"ticket.created"}`)
	at := time.Unix(1700000000, 999_000_000)

	h, err := SignatureHeaders("evt_1", body, at, secret)
	require.NoError(t, err)

	want := "t=1700000000,v1=" + hmacHex(secret, "1700000000."+string(body))
	require.Equal(t, want, h.Get(HeaderSignature))
	require.Equal(t, "evt_1", h.Get(HeaderWebhookID))
	require.Equal(t, "1700000000", h.Get(HeaderWebhookTimestamp))
}

func TestSignatureHeadersStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	// The example from the Standard Webhooks specification and its
	// reference libraries.
	const (
		secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		msgID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		payload = `{"test": 2432232314}`
		want    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)

	h, err := SignatureHeaders(msgID, []byte(payload), time.Unix(1614265330, 0), secret)
	require.NoError(t, err)

	require.Equal(t, want, h.Get(HeaderWebhookSignature))
	require.Equal(t, msgID, h.Get(HeaderWebhookID))
	require.Equal(t, "1614265330", h.Get(HeaderWebhookTimestamp))
	require.Equal(t, want, standardSignature(t, secret, msgID, "1614265330", []byte(payload)),
		"the test's own Standard Webhooks helper disagrees with the vector")
}

func TestSignatureHeadersTwoSecrets(t *testing.T) {
	t.Parallel()
	first, second := NewSecret(), NewSecret()
	body := []byte(`{"a":1}`)
	at := time.Unix(1700000000, 0)

	h, err := SignatureHeaders("evt_2", body, at, first, second)
	require.NoError(t, err)

	wantOutpost := "t=1700000000" +
		",v1=" + hmacHex(first, "1700000000."+string(body)) +
		",v1=" + hmacHex(second, "1700000000."+string(body))
	require.Equal(t, wantOutpost, h.Get(HeaderSignature))

	standard := strings.Split(h.Get(HeaderWebhookSignature), " ")
	require.Len(t, standard, 2)
	require.Equal(t, standardSignature(t, first, "evt_2", "1700000000", body), standard[0])
	require.Equal(t, standardSignature(t, second, "evt_2", "1700000000", body), standard[1])

	now := at.Add(time.Minute)
	require.NoError(t, VerifySignature(h.Get(HeaderSignature), body, first, 5*time.Minute, now))
	require.NoError(t, VerifySignature(h.Get(HeaderSignature), body, second, 5*time.Minute, now))
}

func TestSignatureHeadersRejectsBadSecret(t *testing.T) {
	t.Parallel()
	_, err := SignatureHeaders("evt_3", []byte("{}"), time.Unix(1700000000, 0), "whsec_not base64!")
	require.Error(t, err)
	require.Contains(t, err.Error(), "signing secret")
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	body := []byte(`{"id":"evt_4","data":{"title":"Printer on fire"}}`)
	at := time.Unix(1700000000, 0)
	h, err := SignatureHeaders("evt_4", body, at, secret)
	require.NoError(t, err)
	header := h.Get(HeaderSignature)
	const tolerance = 5 * time.Minute

	t.Run("valid header", func(t *testing.T) {
		require.NoError(t, VerifySignature(header, body, secret, tolerance, at.Add(time.Minute)))
	})
	t.Run("tampered body", func(t *testing.T) {
		tampered := []byte(strings.Replace(string(body), "Printer", "Scanner", 1))
		require.Error(t, VerifySignature(header, tampered, secret, tolerance, at))
	})
	t.Run("wrong secret", func(t *testing.T) {
		require.Error(t, VerifySignature(header, body, NewSecret(), tolerance, at))
	})
	t.Run("timestamp too old", func(t *testing.T) {
		err := VerifySignature(header, body, secret, tolerance, at.Add(tolerance+time.Second))
		require.ErrorContains(t, err, "tolerance")
	})
	t.Run("timestamp in future", func(t *testing.T) {
		err := VerifySignature(header, body, secret, tolerance, at.Add(-tolerance-time.Second))
		require.ErrorContains(t, err, "tolerance")
	})
	t.Run("missing timestamp", func(t *testing.T) {
		_, sig, _ := strings.Cut(header, ",")
		require.Error(t, VerifySignature(sig, body, secret, tolerance, at))
	})
	t.Run("missing signature", func(t *testing.T) {
		require.Error(t, VerifySignature("t=1700000000", body, secret, tolerance, at))
	})
}

func TestNewSecretFormat(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)

	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	require.Len(t, key, 32)

	require.NotEqual(t, secret, NewSecret())
}
