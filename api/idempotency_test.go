package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/models"
)

func idempotencyHeader() string {
	return "Idempotency-Key: " + rand.Text()
}

func TestIdempotentCreateReplays(t *testing.T) {
	t.Parallel()
	s := setup(t)
	header := idempotencyHeader()
	name := unique("Replay Corp")
	body := map[string]any{"name": name}

	first := s.do(http.MethodPost, "/api/accounts", header, body)
	require.Equal(t, http.StatusCreated, first.Code, "body: %s", first.Body)
	second := s.do(http.MethodPost, "/api/accounts", header, body)
	require.Equal(t, http.StatusCreated, second.Code, "body: %s", second.Body)
	require.Equal(t, first.Body.String(), second.Body.String())
	require.Equal(t, "true", second.Header().Get("Idempotent-Replayed"))
	require.Equal(t, first.Header().Get("Content-Type"), second.Header().Get("Content-Type"))
	require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name))

	p := requireProblem(t, s.do(http.MethodPost, "/api/accounts", header, map[string]any{"name": name + " 2"}),
		http.StatusUnprocessableEntity)
	require.Len(t, p.Errors, 1)
	require.Equal(t, "header.Idempotency-Key", p.Errors[0].Location)
	require.Contains(t, p.Detail, "Idempotency-Key")
	require.EqualValues(t, 0, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name+" 2"))
}

func TestIdempotencyKeyPerAPIKey(t *testing.T) {
	t.Parallel()
	s := setup(t)
	header := idempotencyHeader()
	name := unique("Scoped Corp")
	other := s.roleAuth(t, models.RoleAgent)

	rec := s.do(http.MethodPost, "/api/accounts", header, map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, rec.Code, "body: %s", rec.Body)
	rec = s.api.Post("/api/accounts", other, header, map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, rec.Code, "body: %s", rec.Body)
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	require.EqualValues(t, 2, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name))
}

func TestIdempotentMessageCreate(t *testing.T) {
	t.Parallel()
	s := setup(t)
	account := s.createAccount(t, nil)
	ticket := s.createTicket(t, account.ID, nil)
	header := idempotencyHeader()
	body := map[string]any{"body": "Have you tried exporting as CSV?", "authorType": "customer"}

	first := s.do(http.MethodPost, "/api/tickets/"+ticket.ID+"/messages", header, body)
	require.Equal(t, http.StatusCreated, first.Code, "body: %s", first.Body)
	second := s.do(http.MethodPost, "/api/tickets/"+ticket.ID+"/messages", header, body)
	require.Equal(t, first.Body.String(), second.Body.String())
	require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM messages WHERE ticket_id = ?", ticket.ID))
}

func TestIdempotencyFailureNotStored(t *testing.T) {
	t.Parallel()
	s := setup(t)
	header := idempotencyHeader()

	requireProblem(t, s.do(http.MethodPost, "/api/tickets", header), http.StatusBadRequest)
	rec := s.do(http.MethodPost, "/api/tickets", header, map[string]any{"title": "x", "source": "api", "accountId": "acc_missing"})
	require.GreaterOrEqual(t, rec.Code, 400, "body: %s", rec.Body)
	account := s.createAccount(t, nil)
	rec = s.do(http.MethodPost, "/api/tickets", header, map[string]any{"title": "x", "source": "api", "accountId": account.ID})
	require.Equal(t, http.StatusCreated, rec.Code, "a failed request releases its key; body: %s", rec.Body)
}

func TestIdempotencyInvalidKey(t *testing.T) {
	t.Parallel()
	s := setup(t)
	rec := s.do(http.MethodPost, "/api/accounts", "Idempotency-Key: caf\u00e9", map[string]any{"name": unique("x")})
	requireErrorAt(t, rec, http.StatusUnprocessableEntity, "header.Idempotency-Key")

	// An empty header is a key too short, not a missing one.
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)
	name := unique("Empty Key Corp")
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/accounts", strings.NewReader(`{"name":"`+name+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.secret)
	req.Header["Idempotency-Key"] = []string{""}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.EqualValues(t, 0, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name))
}

// TestIdempotencyKeyExpires runs the API on a pinned clock and moves it past
// the key's time to live.
func TestIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	s := setup(t)
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	deps := s.deps
	deps.Idempotency = idempotency.New(s.db, 24*time.Hour, clock.Now)
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)
	header := idempotencyHeader()
	name := unique("Expiring Corp")

	rec := tapi.Post("/api/accounts", s.auth, header, map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, rec.Code, "body: %s", rec.Body)
	clock.Advance(24*time.Hour - time.Microsecond)
	rec = tapi.Post("/api/accounts", s.auth, header, map[string]any{"name": name})
	require.Equal(t, "true", rec.Header().Get("Idempotent-Replayed"), "before expiry")

	clock.Advance(time.Microsecond)
	rec = tapi.Post("/api/accounts", s.auth, header, map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, rec.Code, "body: %s", rec.Body)
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"), "after expiry")
	require.EqualValues(t, 2, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name))
}

// TestIdempotencyConcurrent sends one create from many goroutines at once
// over real HTTP.
func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	s := setup(t)
	srv := httptest.NewServer(newHandler(t, s.deps))
	t.Cleanup(srv.Close)
	account := s.createAccount(t, nil)
	title := unique("concurrent")
	body, err := json.Marshal(map[string]any{"title": title, "source": "api", "accountId": account.ID})
	require.NoError(t, err)
	key := rand.Text()

	const senders = 8
	var wg sync.WaitGroup
	statuses := make([]int, senders)
	bodies := make([]string, senders)
	start := make(chan struct{})
	for i := range senders {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/tickets", bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Authorization", "Bearer "+s.secret)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			statuses[i], bodies[i] = res.StatusCode, string(b)
		})
	}
	close(start)
	wg.Wait()

	var created []string
	for i, status := range statuses {
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status, "sender %d: %s", i, bodies[i])
		if status == http.StatusCreated {
			created = append(created, bodies[i])
		}
	}
	require.NotEmpty(t, created)
	for _, b := range created {
		require.Equal(t, created[0], b, "every 201 is the same response")
	}
	require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM tickets WHERE title = ?", title))
}

// clockedIdempotency returns an API whose idempotency keys age by the
// returned clock, and the store behind them.
func (s *server) clockedIdempotency(t *testing.T) (*testClock, *idempotency.Store, humatest.TestAPI) {
	t.Helper()
	clk := &testClock{now: time.Now()}
	store := idempotency.New(s.db, 0, clk.Now)
	deps := s.deps
	deps.Idempotency = store
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, deps)
	return clk, store, tapi
}

// TestIdempotentCreateAfterLostResponse claims a key and commits its
// create as a request would, then stops before the response is stored, as
// if the server crashed. A repeat after the claim has gone stale must not
// create a second record.
func TestIdempotentCreateAfterLostResponse(t *testing.T) {
	t.Parallel()
	s := setup(t)
	clk, store, tapi := s.clockedIdempotency(t)

	name := unique("Crash Corp")
	body, err := json.Marshal(map[string]any{"name": name})
	require.NoError(t, err)
	key := rand.Text()
	claimed, claim, err := store.Claim(t.Context(), s.key.ID, key, api.RequestHash("create-account", "/api/accounts", body))
	require.NoError(t, err)
	require.True(t, claimed)
	account, err := s.deps.Helpdesk.CreateAccount(idempotency.WithClaim(t.Context(), claim), helpdesk.NewAccount{Name: name})
	require.NoError(t, err)
	require.NoError(t, store.Release(t.Context(), s.key.ID, key), "a failing response after the commit releases the key")

	clk.Advance(10 * time.Minute)
	rec := tapi.Post("/api/accounts", s.auth, "Idempotency-Key: "+key, "Content-Type: application/json", bytes.NewReader(body))
	p := requireProblem(t, rec, http.StatusConflict)
	require.Contains(t, p.Detail, "created "+account.ID)
	require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name),
		"the repeat created nothing")
}

// TestIdempotentCreateAfterTakeover lets a create run past the stale-claim
// limit, so that a repeat takes its claim over and creates the record. The
// first create then commits late and must roll back.
func TestIdempotentCreateAfterTakeover(t *testing.T) {
	t.Parallel()
	s := setup(t)
	clk, store, tapi := s.clockedIdempotency(t)

	name := unique("Slow Corp")
	body, err := json.Marshal(map[string]any{"name": name})
	require.NoError(t, err)
	key := rand.Text()
	_, slow, err := store.Claim(t.Context(), s.key.ID, key, api.RequestHash("create-account", "/api/accounts", body))
	require.NoError(t, err)

	clk.Advance(10 * time.Minute)
	rec := tapi.Post("/api/accounts", s.auth, "Idempotency-Key: "+key, "Content-Type: application/json", bytes.NewReader(body))
	require.Equal(t, http.StatusCreated, rec.Code, "the repeat takes the stale claim over; body: %s", rec.Body)

	_, err = s.deps.Helpdesk.CreateAccount(idempotency.WithClaim(t.Context(), slow), helpdesk.NewAccount{Name: name})
	require.ErrorIs(t, err, idempotency.ErrClaimLost)
	require.EqualValues(t, 1, countRows(t, s.db, "SELECT count(*) FROM accounts WHERE name = ?", name),
		"the late create rolled back")
}
