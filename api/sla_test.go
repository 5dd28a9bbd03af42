package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/sla"
)

// slaServer is the API with the SLA engine, on its own database and Redis
// index so that it shares nothing with other API tests.
type slaServer struct {
	url string
	key string
}

var (
	slaRedisOnce sync.Once
	slaRedisURL  string
)

func startSLAServer(t *testing.T) *slaServer {
	t.Helper()
	db := testenv.DB(t, "api_sla")
	// Index 9 is free for these tests; it is flushed once per test binary.
	slaRedisOnce.Do(func() { slaRedisURL = testenv.RedisURL(t, 9) })
	opt, err := asynq.ParseRedisURI(slaRedisURL)
	require.NoError(t, err)
	queue := asynq.NewClient(opt)
	t.Cleanup(func() { _ = queue.Close() })
	logger := testenv.Logger(t)

	dispatcher := outbox.NewDispatcher(db, queue, logger, nil)
	engine := sla.NewEngine(db, queue, dispatcher, logger, nil)
	keys := apikeys.New(db, nil)
	_, secret, err := keys.Create(context.Background(), apikeys.NewKey{Name: "sla-test", Role: models.RoleAdmin})
	require.NoError(t, err)
	srv := httptest.NewServer(newHandler(t, api.Deps{
		Helpdesk: helpdesk.NewService(db, dispatcher, nil, helpdesk.WithTicketHook(engine)),
		Keys:     keys,
		SLA:      engine,
		Ready:    func(context.Context) error { return nil },
		Logger:   logger,
	}))
	t.Cleanup(srv.Close)
	return &slaServer{url: srv.URL, key: secret}
}

// call sends a JSON request, requires status want and decodes the response
// into out unless it is nil.
func (s *slaServer) call(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out))
	}
}

type problem struct {
	Errors []struct {
		Location string `json:"location"`
	} `json:"errors"`
}

func (s *slaServer) requireProblem(t *testing.T, method, path string, body any, want int, location string) {
	t.Helper()
	var p problem
	s.call(t, method, path, body, want, &p)
	require.NotEmpty(t, p.Errors, "%s %s", method, path)
	require.Equal(t, location, p.Errors[0].Location)
}

func TestBusinessHoursEndpoints(t *testing.T) {
	t.Parallel()
	s := startSLAServer(t)
	hours := []map[string]string{{"weekday": "monday", "start": "09:00", "end": "17:00"}}

	s.requireProblem(t, "POST", "/api/business-hours", map[string]any{"name": "x", "timeZone": "Mars/Base", "hours": hours}, 422, "body.timeZone")
	s.requireProblem(t, "POST", "/api/business-hours", map[string]any{"name": "x", "timeZone": "UTC", "hours": []any{}}, 422, "body.hours")
	s.requireProblem(t, "POST", "/api/business-hours", map[string]any{"name": "x", "timeZone": "UTC",
		"hours": []map[string]string{{"weekday": "monday", "start": "09:00", "end": "12:00"}, {"weekday": "monday", "start": "11:00", "end": "13:00"}}}, 422, "body.hours")
	s.requireProblem(t, "POST", "/api/business-hours", map[string]any{"name": "x", "timeZone": "UTC",
		"hours": []map[string]string{{"weekday": "monday", "start": "18:00", "end": "08:00"}}}, 422, "body.hours[0].end")
	s.requireProblem(t, "POST", "/api/business-hours", map[string]any{"name": "x", "timeZone": "UTC",
		"hours": []map[string]string{{"weekday": "monday", "start": "9:00", "end": "17:00"}}}, 422, "body.hours[0].start")

	var bh models.BusinessHours
	s.call(t, "POST", "/api/business-hours", map[string]any{
		"name": "Berlin", "timeZone": "Europe/Berlin", "hours": hours,
		"holidays": []map[string]string{{"date": "2030-12-25", "name": "Christmas Day"}},
	}, 201, &bh)
	require.Equal(t, "Europe/Berlin", bh.TimeZone)
	require.Len(t, bh.Holidays, 1)

	s.call(t, "PATCH", "/api/business-hours/"+bh.ID, map[string]any{"name": "Berlin office"}, 200, &bh)
	require.Equal(t, "Berlin office", bh.Name)
	s.requireProblem(t, "PATCH", "/api/business-hours/"+bh.ID, map[string]any{"timeZone": "Local"}, 422, "body.timeZone")

	var p models.SLAPolicy
	s.call(t, "POST", "/api/sla-policies", map[string]any{
		"name": "Office", "businessHoursId": bh.ID,
		"firstResponse": map[string]any{"clock": "business", "urgent": 30, "high": 60, "medium": 120, "low": 480},
		"resolution":    map[string]any{"clock": "calendar", "urgent": 240, "high": 480, "medium": 960, "low": 2880},
	}, 201, &p)
	s.requireProblem(t, "DELETE", "/api/business-hours/"+bh.ID, nil, 409, "path.id")
	s.call(t, "DELETE", "/api/sla-policies/"+p.ID, nil, 204, nil)
	s.call(t, "DELETE", "/api/business-hours/"+bh.ID, nil, 204, nil)
	s.call(t, "GET", "/api/business-hours/"+bh.ID, nil, 404, nil)
}

func TestSLAPolicyEndpoints(t *testing.T) {
	t.Parallel()
	s := startSLAServer(t)
	var page struct {
		Data []models.SLAPolicy `json:"data"`
	}
	s.call(t, "GET", "/api/sla-policies?limit=100", nil, 200, &page)
	var def models.SLAPolicy
	for _, p := range page.Data {
		if p.IsDefault {
			def = p
		}
	}
	require.Equal(t, "Default", def.Name, "the migration seeds the default policy")
	require.Equal(t, models.SLATargets{Clock: models.ClockCalendar, Urgent: 15, High: 60, Medium: 240, Low: 1440}, def.FirstResponse)
	require.Equal(t, models.SLATargets{Clock: models.ClockCalendar, Urgent: 240, High: 1440, Medium: 4320, Low: 10080}, def.Resolution)

	s.requireProblem(t, "DELETE", "/api/sla-policies/"+def.ID, nil, 409, "path.id")
	s.requireProblem(t, "POST", "/api/sla-policies", map[string]any{
		"name":          "Broken",
		"firstResponse": map[string]any{"clock": "business", "urgent": 1, "high": 1, "medium": 1, "low": 1},
		"resolution":    map[string]any{"clock": "calendar", "urgent": 1, "high": 1, "medium": 1, "low": 1},
	}, 422, "body.firstResponse.clock")

	var p models.SLAPolicy
	s.call(t, "POST", "/api/sla-policies", map[string]any{
		"name": "Enterprise", "tier": "enterprise-api", "warnBeforeMinutes": 10,
		"firstResponse": map[string]any{"clock": "calendar", "urgent": 10, "high": 30, "medium": 60, "low": 240},
		"resolution":    map[string]any{"clock": "calendar", "urgent": 120, "high": 240, "medium": 480, "low": 1440},
	}, 201, &p)
	require.Equal(t, 10, *p.WarnBeforeMinutes)

	s.call(t, "PATCH", "/api/sla-policies/"+p.ID, map[string]any{"warnBeforeMinutes": nil, "name": "Enterprise plus"}, 200, &p)
	require.Nil(t, p.WarnBeforeMinutes)
	require.Equal(t, "Enterprise plus", p.Name)
	s.call(t, "GET", "/api/sla-policies/"+p.ID, nil, 200, &p)
	require.Equal(t, "enterprise-api", p.Tier)
	s.call(t, "DELETE", "/api/sla-policies/"+p.ID, nil, 204, nil)
	s.call(t, "GET", "/api/sla-policies/"+p.ID, nil, 404, nil)
}

func TestTicketReturnsSLA(t *testing.T) {
	t.Parallel()
	s := startSLAServer(t)
	// The database outlives one run under -count, so the tier is unique.
	tier := strings.ToLower(unique("gold-api"))
	var acc models.Account
	s.call(t, "POST", "/api/accounts", map[string]any{"name": "Acme", "tier": tier}, 201, &acc)
	require.Equal(t, tier, acc.Tier)
	var accounts struct {
		Data []models.Account `json:"data"`
	}
	s.call(t, "GET", "/api/accounts?tier="+tier, nil, 200, &accounts)
	require.Len(t, accounts.Data, 1)
	require.Equal(t, acc.ID, accounts.Data[0].ID)

	var tk models.Ticket
	s.call(t, "POST", "/api/tickets", map[string]any{"title": "Down", "source": "web", "priority": "urgent", "accountId": acc.ID}, 201, &tk)
	s.call(t, "POST", "/api/tickets/"+tk.ID+"/messages", map[string]any{"authorType": "bot", "body": "We got your request."}, 201, nil)

	var detail struct {
		ID  string         `json:"id"`
		SLA *sla.TicketSLA `json:"sla"`
	}
	s.call(t, "GET", "/api/tickets/"+tk.ID, nil, 200, &detail)
	require.NotNil(t, detail.SLA)
	require.Equal(t, models.SLARunning, detail.SLA.FirstResponse.State, "a bot reply is no first response")
	require.Equal(t, tk.CreatedAt.Add(15*time.Minute), detail.SLA.FirstResponse.DueAt.UTC())
	require.Equal(t, tk.CreatedAt.Add(4*time.Hour), detail.SLA.Resolution.DueAt.UTC())

	var list struct {
		Data []struct {
			ID  string         `json:"id"`
			SLA *sla.TicketSLA `json:"sla"`
		} `json:"data"`
	}
	s.call(t, "GET", "/api/tickets?accountId="+acc.ID, nil, 200, &list)
	require.Len(t, list.Data, 1)
	require.NotNil(t, list.Data[0].SLA)
	require.Equal(t, detail.SLA.PolicyID, list.Data[0].SLA.PolicyID)
}
