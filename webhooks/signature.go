package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// secretPrefix starts every signing secret, as in the Standard Webhooks
// specification.
const secretPrefix = "whsec_"

// Header names of a delivery.
const (
	HeaderSignature  = "X-Outpost-Signature"
	HeaderEvent      = "X-Outpost-Event"
	HeaderEventID    = "X-Outpost-Event-Id"
	HeaderDeliveryID = "X-Outpost-Delivery-Id"

	// Standard Webhooks headers, https://www.standardwebhooks.com.
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// NewSecret returns a new signing secret: "whsec_" followed by the standard
// base64 encoding of 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	// crypto/rand.Read never returns an error; it crashes the program
	// instead if the system's randomness is unavailable.
	_, _ = rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SignatureHeaders returns the signature headers of one delivery attempt of
// body for event eventID, signed at time at with each of secrets.
//
// X-Outpost-Signature is "t=<unix seconds>,v1=<hex>", where the hex string is
// the HMAC-SHA256 of "<t>.<body>" keyed by the secret string as the API
// returned it. webhook-signature follows the Standard Webhooks scheme: the
// base64 HMAC-SHA256 of "<webhook-id>.<t>.<body>" keyed by the base64-decoded
// part of the secret after "whsec_". Each secret adds one entry to each
// header, separated by a comma and a space respectively.
func SignatureHeaders(eventID string, body []byte, at time.Time, secrets ...string) (http.Header, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	outpostSig := []string{"t=" + ts}
	var standardSigs []string
	for _, secret := range secrets {
		outpostSig = append(outpostSig, "v1="+hex.EncodeToString(mac([]byte(secret), ts, ".", string(body))))

		key, err := decodeSecret(secret)
		if err != nil {
			return nil, err
		}
		sum := mac(key, eventID, ".", ts, ".", string(body))
		standardSigs = append(standardSigs, "v1,"+base64.StdEncoding.EncodeToString(sum))
	}

	h := http.Header{}
	h.Set(HeaderSignature, strings.Join(outpostSig, ","))
	h.Set(HeaderWebhookID, eventID)
	h.Set(HeaderWebhookTimestamp, ts)
	h.Set(HeaderWebhookSignature, strings.Join(standardSigs, " "))
	return h, nil
}

// VerifySignature checks an X-Outpost-Signature header value against body
// and secret, and rejects a timestamp further than tolerance from now. It is
// the check a receiver runs, and the README shows the same steps.
func VerifySignature(header string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("signature header has no valid t= timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %s away from now, beyond the tolerance of %s", d.Round(time.Second), tolerance)
	}
	want := mac([]byte(secret), ts, ".", string(body))
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature matches the body")
}

func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("decode signing secret: %w", err)
	}
	return key, nil
}

func mac(key []byte, parts ...string) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}
