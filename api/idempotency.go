package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/idempotency"
)

// idempotencyHeader carries the client's key for a create request.
const idempotencyHeader = "Idempotency-Key"

// maxIdempotencyKeyLength is the longest Idempotency-Key accepted.
const maxIdempotencyKeyLength = 255

// idempotentMetadata marks an operation in huma.Operation.Metadata whose
// requests accept idempotencyHeader.
const idempotentMetadata = "outpost.idempotent"

// idempotent marks op as accepting the Idempotency-Key header and documents
// the header.
func idempotent(op huma.Operation) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[idempotentMetadata] = true
	maxLength := maxIdempotencyKeyLength
	op.Parameters = append(op.Parameters, &huma.Param{
		Name: idempotencyHeader,
		In:   "header",
		Description: "A unique value per intended create, such as a UUID. Repeating the request with the same " +
			"key and body within 24 hours returns the first response and creates nothing. " +
			"The same key with another body gets 422. Keys are scoped to the API key, or to the agent when signed in.",
		Schema: &huma.Schema{Type: "string", MinLength: new(1), MaxLength: &maxLength},
	})
	op.Errors = append(op.Errors, http.StatusConflict)
	return op
}

// withIdempotency returns middleware that, on an operation marked by
// idempotent and a request with an Idempotency-Key, claims the key before
// the handler runs and stores a 2xx response for replays. It runs after
// authenticate, because keys are scoped to the caller.
func withIdempotency(api huma.API, store *idempotency.Store, logger *slog.Logger) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		key, sent := "", false
		ctx.EachHeader(func(name, value string) {
			if strings.EqualFold(name, idempotencyHeader) && !sent {
				key, sent = value, true
			}
		})
		if !sent || op.Metadata[idempotentMetadata] != true {
			next(ctx)
			return
		}
		if !validIdempotencyKey(key) {
			_ = huma.WriteErr(api, ctx, http.StatusUnprocessableEntity, "invalid Idempotency-Key header",
				&huma.ErrorDetail{Location: "header." + idempotencyHeader, Message: "use 1 to 255 printable ASCII characters, such as a UUID"})
			return
		}
		c, ok := callerFrom(ctx.Context())
		if !ok {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "the request is not authenticated")
			return
		}
		principal := c.id()

		body, err := readBody(ctx)
		if err != nil {
			_ = huma.WriteErr(api, ctx, http.StatusBadRequest, "cannot read request body")
			return
		}
		buffered := &recordingContext{innerContext: ctx, body: body}
		if int64(len(body)) >= op.MaxBodyBytes {
			// huma answers 413 for a body of this size.
			next(buffered)
			return
		}

		logFailure := func(msg string, err error) {
			logger.ErrorContext(ctx.Context(), msg,
				slog.String("request_id", requestID(ctx.Context())),
				slog.String("caller", principal),
				slog.String("err", err.Error()))
		}
		hash := requestHash(op.OperationID, ctx.URL().Path, body)
		claimed, rec, err := store.Claim(ctx.Context(), principal, key, hash)
		if err != nil {
			logFailure("claim idempotency key", err)
			_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "idempotency keys are unavailable; retry shortly")
			return
		}
		if !claimed {
			replay(api, ctx, store, rec, hash)
			return
		}

		buffered.innerContext = huma.WithContext(ctx, idempotency.WithClaim(ctx.Context(), rec))
		next(buffered)

		// The stored response must outlive a client that disconnects now.
		storeCtx := context.WithoutCancel(ctx.Context())
		if buffered.status >= 200 && buffered.status < 300 {
			err = store.Complete(storeCtx, principal, key, buffered.status, buffered.contentType, buffered.out.Bytes())
			if err != nil {
				logFailure("store idempotent response", err)
			}
			return
		}
		if err := store.Release(storeCtx, principal, key); err != nil {
			logFailure("release idempotency key", err)
		}
	}
}

// replay responds to a request whose key was claimed before: with the stored
// response, or with 422 or 409 when the request differs or still runs.
func replay(api huma.API, ctx huma.Context, store *idempotency.Store, rec idempotency.Record, hash []byte) {
	switch {
	case !bytes.Equal(rec.RequestHash, hash):
		_ = huma.WriteErr(api, ctx, http.StatusUnprocessableEntity,
			"the Idempotency-Key header was already used with a different request",
			&huma.ErrorDetail{Location: "header." + idempotencyHeader,
				Message: "send a new Idempotency-Key for a new request, or repeat the first request unchanged"})
	case rec.Status == nil && rec.ResourceID != nil && store.Abandoned(rec):
		// The first request's create committed long ago, but its
		// response was never stored, as after a crash.
		_ = huma.WriteErr(api, ctx, http.StatusConflict, fmt.Sprintf(
			"the request with this Idempotency-Key created %s, but its response was not stored, "+
				"as when the server stops at that moment; look the record up rather than repeat the request", *rec.ResourceID))
	case rec.Status == nil:
		_ = huma.WriteErr(api, ctx, http.StatusConflict,
			"a request with this Idempotency-Key is still running; repeat it shortly to get its response")
	default:
		ctx.SetHeader("Content-Type", rec.ContentType)
		ctx.SetHeader("Idempotent-Replayed", "true")
		ctx.SetStatus(*rec.Status)
		_, _ = ctx.BodyWriter().Write(rec.Body)
	}
}

// requestHash identifies a request by its operation, path and exact body
// bytes, so that a JSON body with other spacing counts as different.
func requestHash(operationID, path string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(operationID))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}

func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > maxIdempotencyKeyLength {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// innerContext lets recordingContext embed a huma.Context, whose Context
// method would clash with a field named Context.
type innerContext huma.Context

// readBody reads the request body up to the operation's MaxBodyBytes, so
// that a middleware can hand it on with recordingContext. huma answers 413
// for a body that reaches the limit. A request without a body has a nil
// reader.
func readBody(ctx huma.Context) ([]byte, error) {
	reader := ctx.BodyReader()
	if reader == nil {
		return nil, nil
	}
	return io.ReadAll(io.LimitReader(reader, ctx.Operation().MaxBodyBytes))
}

// recordingContext gives the handler the buffered request body and keeps a
// copy of the response's status, content type and body.
type recordingContext struct {
	innerContext
	body        []byte
	status      int
	contentType string
	out         bytes.Buffer
}

func (c *recordingContext) BodyReader() io.Reader { return bytes.NewReader(c.body) }

func (c *recordingContext) SetStatus(code int) {
	c.status = code
	c.innerContext.SetStatus(code)
}

func (c *recordingContext) SetHeader(name, value string) {
	if http.CanonicalHeaderKey(name) == "Content-Type" {
		c.contentType = value
	}
	c.innerContext.SetHeader(name, value)
}

func (c *recordingContext) BodyWriter() io.Writer {
	return io.MultiWriter(c.innerContext.BodyWriter(), &c.out)
}
