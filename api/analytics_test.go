package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/api"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

// defaultPolicyID is the SLA policy the SLA migration ships.
const defaultPolicyID = "slp_01m90wf0e2fv0a0hd8q122cfj6"

// fixture is one ticket written straight to the tables, with the instants
// of its history, so the expected values come from this struct and not
// from the SQL under test.
type fixture struct {
	id       string
	source   string
	priority string
	agent    string
	created  time.Time
	// statuses are status changes after creation, in order.
	statuses []statusChange
	// replies are public agent replies; noise messages are added beside
	// them and must not count.
	replies []time.Time
	frtMet  *time.Time
	frtMiss *time.Time
}

type statusChange struct {
	at       time.Time
	from, to string
}

func (f fixture) status() string {
	if len(f.statuses) == 0 {
		return "open"
	}
	return f.statuses[len(f.statuses)-1].to
}

// resolvedAt replays the status history the way helpdesk's setStatus does.
func (f fixture) resolvedAt() *time.Time {
	var at *time.Time
	for _, c := range f.statuses {
		switch c.to {
		case "resolved":
			at = &c.at
		case "closed":
			if at == nil {
				at = &c.at
			}
		default:
			at = nil
		}
	}
	return at
}

func isResolve(c statusChange) bool {
	return c.to == "resolved" || c.to == "closed" && c.from != "resolved"
}

type analyticsServer struct {
	api     humatest.TestAPI
	db      *gorm.DB
	auth    string
	rollup  *analytics.Rollup
	account string
	agent   string
}

func startAnalyticsServer(t *testing.T) *analyticsServer {
	t.Helper()
	db := testenv.DB(t, "api_analytics")
	keys := apikeys.New(db, nil)
	_, tapi := humatest.New(t, api.Config())
	api.Register(tapi, api.Deps{
		Keys:      keys,
		Analytics: analytics.NewReports(db),
		Logger:    testenv.Logger(t),
	})
	_, secret, err := keys.Create(t.Context(), apikeys.NewKey{Name: "test", Role: models.RoleViewer})
	require.NoError(t, err)
	s := &analyticsServer{api: tapi, db: db, auth: "Authorization: Bearer " + secret,
		rollup: analytics.NewRollup(db, testenv.Logger(t), nil)}
	s.account = "acc_" + unique("a")
	s.agent = "agt_" + unique("x")
	now := time.Now()
	require.NoError(t, db.Exec(`INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, 'A', ?, ?)`,
		s.account, now, now).Error)
	require.NoError(t, db.Exec(`INSERT INTO agents (id, name, email, created_at, updated_at) VALUES (?, 'X', ?, ?, ?)`,
		s.agent, s.agent+"@example.test", now, now).Error)
	return s
}

func (s *analyticsServer) insert(t *testing.T, fs []fixture) {
	t.Helper()
	for _, f := range fs {
		var assignee any
		if f.agent != "" {
			assignee = f.agent
		}
		require.NoError(t, s.db.Exec(`INSERT INTO tickets (id, title, status, priority, source, account_id,
			assignee_id, created_at, updated_at, resolved_at) VALUES (?, 't', ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.id, f.status(), f.priority, f.source, s.account, assignee, f.created, f.created, f.resolvedAt()).Error)
		changes := []statusChange{{at: f.created, to: "open"}}
		changes = append(changes, f.statuses...)
		for i, c := range changes {
			from := any(c.from)
			if i == 0 {
				from = nil
			}
			body, _ := json.Marshal(map[string]any{"status": map[string]any{"from": from, "to": c.to}})
			require.NoError(t, s.db.Exec(`INSERT INTO ticket_changes (id, ticket_id, changes, created_at) VALUES (?, ?, ?, ?)`,
				fmt.Sprintf("chg_%s_%d", f.id, i), f.id, string(body), c.at).Error)
		}
		for i, at := range f.replies {
			require.NoError(t, s.db.Exec(`INSERT INTO messages (id, ticket_id, author_type, author_id, body, created_at)
				VALUES (?, ?, 'agent', ?, 'reply', ?)`, fmt.Sprintf("msg_%s_%d", f.id, i), f.id, s.agent, at).Error)
			// A customer message and an internal note before the reply
			// are no response.
			require.NoError(t, s.db.Exec(`INSERT INTO messages (id, ticket_id, author_type, body, created_at)
				VALUES (?, ?, 'customer', 'hi', ?)`, fmt.Sprintf("msg_%s_%dc", f.id, i), f.id, at.Add(-time.Minute)).Error)
			require.NoError(t, s.db.Exec(`INSERT INTO messages (id, ticket_id, author_type, author_id, body, internal, created_at)
				VALUES (?, ?, 'agent', ?, 'note', true, ?)`, fmt.Sprintf("msg_%s_%dn", f.id, i), f.id, s.agent, at.Add(-2*time.Minute)).Error)
		}
		for _, sla := range []struct {
			met, missed *time.Time
		}{{f.frtMet, f.frtMiss}} {
			if sla.met == nil && sla.missed == nil {
				continue
			}
			state := "achieved"
			if sla.missed != nil {
				state = "breached"
			}
			require.NoError(t, s.db.Exec(`INSERT INTO ticket_sla (ticket_id, metric, policy_id, target_minutes, state,
				achieved_at, breached_at, updated_at) VALUES (?, 'first_response', ?, 60, ?, ?, ?, now())`,
				f.id, defaultPolicyID, state, sla.met, sla.missed).Error)
		}
	}
}

func (s *analyticsServer) get(t *testing.T, path string, q url.Values, want int, out any) {
	t.Helper()
	q.Set("accountId", s.account)
	rec := s.api.Do(http.MethodGet, path+"?"+q.Encode(), s.auth)
	require.Equal(t, want, rec.Code, "body: %s", rec.Body)
	if out != nil {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), out))
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// exactQuantile returns the nearest-rank quantile q of values in seconds.
func exactQuantile(values []float64, q float64) float64 {
	sort.Float64s(values)
	rank := int(math.Ceil(q * float64(len(values))))
	return values[max(rank, 1)-1]
}

// requireEstimate checks a histogram estimate against the exact value,
// within the documented error bound.
func requireEstimate(t *testing.T, exact float64, got *float64, what string) {
	t.Helper()
	require.NotNil(t, got, what)
	if exact < 1 {
		require.InDelta(t, exact, *got, 0.5, what)
		return
	}
	require.InEpsilon(t, exact, *got, 0.091, what)
}

// laFixtures builds tickets around 2026-03-07..10 in America/Los_Angeles,
// across the spring-forward day of 2026-03-08 (23 hours), with tickets on
// both range edges and a ticket resolved, reopened and resolved again.
func laFixtures(s *analyticsServer, loc *time.Location, from, to time.Time) []fixture {
	rng := rand.New(rand.NewPCG(7, 8))
	sources := []string{"web", "email", "discord"}
	priorities := []string{"low", "high", "urgent"}
	var fs []fixture
	id := func(n string) string { return "tkt_" + s.account[4:] + "_" + n }
	// On the edges: at from counts, at to does not.
	fs = append(fs,
		fixture{id: id("edge_from"), source: "web", priority: "low", created: from},
		fixture{id: id("edge_to"), source: "web", priority: "low", created: to},
		fixture{id: id("before"), source: "email", priority: "high", created: from.Add(-time.Second),
			statuses: []statusChange{{at: from, from: "open", to: "resolved"}}},
	)
	// Created 01:30 PST, resolved 03:30 PDT (one real hour later),
	// reopened, then resolved again the next day.
	created := time.Date(2026, 3, 8, 1, 30, 0, 0, loc)
	fs = append(fs, fixture{id: id("reopened"), source: "discord", priority: "urgent", agent: s.agent, created: created,
		statuses: []statusChange{
			{at: time.Date(2026, 3, 8, 3, 30, 0, 0, loc), from: "open", to: "resolved"},
			{at: time.Date(2026, 3, 8, 10, 0, 0, 0, loc), from: "resolved", to: "open"},
			{at: time.Date(2026, 3, 9, 10, 0, 0, 0, loc), from: "open", to: "closed"},
		},
		replies: []time.Time{created.Add(20 * time.Minute)},
		frtMet:  ptrTime(created.Add(20 * time.Minute))})
	span := to.Sub(from)
	for i := range 60 {
		c := from.Add(time.Duration(rng.Int64N(int64(span))))
		f := fixture{id: id(fmt.Sprint(i)), source: sources[i%3], priority: priorities[i%len(priorities)], created: c}
		if i%2 == 0 {
			f.agent = s.agent
		}
		if i%3 != 0 {
			r := c.Add(time.Duration(rng.Int64N(int64(6 * time.Hour))))
			f.replies = []time.Time{r, r.Add(time.Hour)}
			if r.Sub(c) < time.Hour {
				f.frtMet = &r
			} else {
				f.frtMiss = ptrTime(c.Add(time.Hour))
			}
		}
		if i%4 != 3 {
			f.statuses = []statusChange{{at: c.Add(time.Duration(rng.Int64N(int64(30 * time.Hour)))), from: "open", to: "resolved"}}
			if i%5 == 0 {
				f.statuses = append(f.statuses, statusChange{at: f.statuses[0].at.Add(time.Hour), from: "resolved", to: "closed"})
			}
		}
		fs = append(fs, f)
	}
	return fs
}

func ptrTime(t time.Time) *time.Time { return &t }

func TestAnalyticsOverview(t *testing.T) {
	t.Parallel()
	s := startAnalyticsServer(t)
	loc := mustZone(t, "America/Los_Angeles")
	from := time.Date(2026, 3, 7, 0, 0, 0, 0, loc)
	to := time.Date(2026, 3, 10, 0, 0, 0, 0, loc)
	fs := laFixtures(s, loc, from, to)
	s.insert(t, fs)
	require.NoError(t, s.rollup.RecomputeRange(t.Context(), from.Add(-48*time.Hour), to.Add(48*time.Hour)))

	in := func(x time.Time) bool { return !x.Before(from) && x.Before(to) }
	var created, resolved, reopened, achieved, breached int
	var frt, first, full []float64
	backlog := map[[2]string]int{}
	for _, f := range fs {
		if in(f.created) {
			created++
		}
		firstDone := false
		for _, c := range f.statuses {
			if isResolve(c) {
				if in(c.at) {
					resolved++
					if !firstDone {
						first = append(first, c.at.Sub(f.created).Seconds())
					}
				}
				firstDone = true
			}
			if (c.from == "resolved" || c.from == "closed") && (c.to == "open" || c.to == "pending") && in(c.at) {
				reopened++
			}
		}
		if r := f.resolvedAt(); r != nil && in(*r) {
			full = append(full, r.Sub(f.created).Seconds())
		}
		if len(f.replies) > 0 && in(f.replies[0]) {
			frt = append(frt, f.replies[0].Sub(f.created).Seconds())
		}
		if f.frtMet != nil && in(*f.frtMet) {
			achieved++
		}
		if f.frtMiss != nil && in(*f.frtMiss) {
			breached++
		}
		if st := f.status(); st == "open" || st == "pending" {
			backlog[[2]string{st, f.priority}]++
		}
	}

	var got struct {
		api.AnalyticsMeta
		analytics.Overview
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "tz": {"America/Los_Angeles"}}
	s.get(t, "/api/analytics/overview", q, http.StatusOK, &got)
	require.Equal(t, created, got.Created, "created")
	require.Equal(t, resolved, got.Resolved, "resolved")
	require.Equal(t, reopened, got.Reopened, "reopened")
	require.Equal(t, 1, reopened, "the fixture has one reopen in range")
	require.Equal(t, len(frt), got.FirstResponse.Count)
	requireEstimate(t, exactQuantile(frt, 0.5), got.FirstResponse.MedianSeconds, "first response median")
	requireEstimate(t, exactQuantile(frt, 0.9), got.FirstResponse.P90Seconds, "first response p90")
	require.Equal(t, len(first), got.FirstResolution.Count)
	requireEstimate(t, exactQuantile(first, 0.5), got.FirstResolution.MedianSeconds, "first resolution median")
	require.Equal(t, len(full), got.FullResolution.Count)
	requireEstimate(t, exactQuantile(full, 0.9), got.FullResolution.P90Seconds, "full resolution p90")
	require.Equal(t, achieved, got.SLA.Achieved)
	require.Equal(t, breached, got.SLA.Breached)
	require.NotNil(t, got.SLA.Percent)
	require.InDelta(t, 100*float64(achieved)/float64(achieved+breached), *got.SLA.Percent, 0.001)
	gotBacklog := map[[2]string]int{}
	for _, b := range got.Backlog {
		gotBacklog[[2]string{b.Status, b.Priority}] = b.Count
	}
	require.Equal(t, backlog, gotBacklog)
	require.NotNil(t, got.RollupUpdatedAt)

	// The same report computed straight from the tickets agrees.
	direct := analytics.NewReports(s.db)
	direct.Direct = true
	want, err := direct.Overview(t.Context(), from, to, analytics.Filter{AccountID: s.account})
	require.NoError(t, err)
	require.Equal(t, want, got.Overview)
}

func TestAnalyticsVolumeDST(t *testing.T) {
	t.Parallel()
	s := startAnalyticsServer(t)
	loc := mustZone(t, "America/Los_Angeles")
	from := time.Date(2026, 3, 7, 0, 0, 0, 0, loc)
	to := time.Date(2026, 3, 10, 0, 0, 0, 0, loc)
	fs := laFixtures(s, loc, from, to)
	s.insert(t, fs)
	require.NoError(t, s.rollup.RecomputeRange(t.Context(), from.Add(-48*time.Hour), to.Add(48*time.Hour)))

	type counts struct{ created, resolved int }
	want := map[string]*counts{}
	for _, d := range []string{"2026-03-07", "2026-03-08", "2026-03-09"} {
		want[d] = &counts{}
	}
	in := func(x time.Time) bool { return !x.Before(from) && x.Before(to) }
	var created, resolved int
	for _, f := range fs {
		if in(f.created) {
			want[f.created.In(loc).Format(time.DateOnly)].created++
			created++
		}
		for _, c := range f.statuses {
			if isResolve(c) && in(c.at) {
				want[c.at.In(loc).Format(time.DateOnly)].resolved++
				resolved++
			}
		}
	}

	var got struct {
		Data []analytics.VolumePoint `json:"data"`
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)},
		"tz": {"America/Los_Angeles"}, "interval": {"day"}}
	s.get(t, "/api/analytics/volume", q, http.StatusOK, &got)
	require.Len(t, got.Data, 3)
	var sumCreated, sumResolved int
	for _, p := range got.Data {
		day := p.Start.In(loc).Format(time.DateOnly)
		require.Equal(t, "00:00:00", p.Start.In(loc).Format(time.TimeOnly), "day %s starts at local midnight", day)
		require.Equal(t, want[day].created, p.Created, "created on %s", day)
		require.Equal(t, want[day].resolved, p.Resolved, "resolved on %s", day)
		sumCreated += p.Created
		sumResolved += p.Resolved
	}

	// The series sums to the overview totals of the same range.
	var overview analytics.Overview
	s.get(t, "/api/analytics/overview", q, http.StatusOK, &overview)
	require.Equal(t, created, sumCreated)
	require.Equal(t, overview.Created, sumCreated)
	require.Equal(t, overview.Resolved, sumResolved)
	require.Equal(t, resolved, sumResolved)

	// Weeks start on Monday at local midnight; the first is clipped to
	// from, a Saturday.
	q.Set("interval", "week")
	s.get(t, "/api/analytics/volume", q, http.StatusOK, &got)
	require.Len(t, got.Data, 2)
	require.True(t, got.Data[0].Start.Equal(from))
	require.True(t, got.Data[1].Start.Equal(time.Date(2026, 3, 9, 0, 0, 0, 0, loc)))
	require.Equal(t, want["2026-03-07"].created+want["2026-03-08"].created, got.Data[0].Created)
	require.Equal(t, want["2026-03-09"].created, got.Data[1].Created)

	// The spring-forward day has 23 hourly buckets.
	dayFrom := time.Date(2026, 3, 8, 0, 0, 0, 0, loc)
	dayTo := time.Date(2026, 3, 9, 0, 0, 0, 0, loc)
	q = url.Values{"from": {dayFrom.Format(time.RFC3339)}, "to": {dayTo.Format(time.RFC3339)},
		"tz": {"America/Los_Angeles"}, "interval": {"hour"}}
	s.get(t, "/api/analytics/volume", q, http.StatusOK, &got)
	require.Len(t, got.Data, 23)
	var hourCreated int
	for _, p := range got.Data {
		hourCreated += p.Created
	}
	require.Equal(t, want["2026-03-08"].created, hourCreated)

	// Grouped by source, each group's series sums to the filtered total.
	q.Set("groupBy", "source")
	q.Set("interval", "day")
	s.get(t, "/api/analytics/volume", q, http.StatusOK, &got)
	bySource := map[string]int{}
	for _, p := range got.Data {
		bySource[p.Group] += p.Created
	}
	wantBySource := map[string]int{}
	for _, f := range fs {
		if !f.created.Before(dayFrom) && f.created.Before(dayTo) {
			wantBySource[f.source] += 1
		}
	}
	require.Equal(t, wantBySource, bySource)
}

func TestAnalyticsFallBackDay(t *testing.T) {
	t.Parallel()
	s := startAnalyticsServer(t)
	loc := mustZone(t, "America/Los_Angeles")
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
	to := time.Date(2026, 11, 2, 0, 0, 0, 0, loc)
	var got struct {
		Data []analytics.VolumePoint `json:"data"`
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)},
		"tz": {"America/Los_Angeles"}, "interval": {"hour"}}
	s.get(t, "/api/analytics/volume", q, http.StatusOK, &got)
	require.Len(t, got.Data, 25)
}

func TestAnalyticsKiritimati(t *testing.T) {
	t.Parallel()
	s := startAnalyticsServer(t)
	loc := mustZone(t, "Pacific/Kiritimati")
	from := time.Date(2026, 6, 1, 0, 0, 0, 0, loc)
	to := time.Date(2026, 6, 3, 0, 0, 0, 0, loc)
	// 23:30 local on June 1 is 09:30 UTC on June 1; 00:30 local on June 2
	// is 10:30 UTC on June 1, the same UTC date but the next local day.
	fs := []fixture{
		{id: "tkt_" + s.account[4:] + "_k1", source: "web", priority: "low", created: time.Date(2026, 6, 1, 23, 30, 0, 0, loc)},
		{id: "tkt_" + s.account[4:] + "_k2", source: "web", priority: "low", created: time.Date(2026, 6, 2, 0, 30, 0, 0, loc)},
		{id: "tkt_" + s.account[4:] + "_k3", source: "web", priority: "low", created: time.Date(2026, 6, 2, 0, 45, 0, 0, loc)},
	}
	s.insert(t, fs)
	require.NoError(t, s.rollup.RecomputeRange(t.Context(), from, to))
	var got struct {
		Data []analytics.VolumePoint `json:"data"`
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)},
		"tz": {"Pacific/Kiritimati"}, "interval": {"day"}}
	s.get(t, "/api/analytics/volume", q, http.StatusOK, &got)
	require.Len(t, got.Data, 2)
	require.Equal(t, "2026-06-01T00:00:00+14:00", got.Data[0].Start.In(loc).Format(time.RFC3339))
	require.Equal(t, 1, got.Data[0].Created)
	require.Equal(t, 2, got.Data[1].Created)
}

func TestAnalyticsRejectsZones(t *testing.T) {
	t.Parallel()
	s := startAnalyticsServer(t)
	q := url.Values{"from": {"2026-03-01T00:00:00Z"}, "to": {"2026-03-02T00:00:00Z"}, "tz": {"Mars/Olympus"}}
	var problem struct {
		Errors []struct{ Location string } `json:"errors"`
	}
	s.get(t, "/api/analytics/overview", q, http.StatusUnprocessableEntity, &problem)
	require.Equal(t, "query.tz", problem.Errors[0].Location)

	q.Set("tz", "Asia/Kolkata")
	s.get(t, "/api/analytics/volume", q, http.StatusUnprocessableEntity, &problem)
	require.Equal(t, "query.tz", problem.Errors[0].Location)

	q.Set("tz", "UTC")
	q.Set("from", "2026-03-01T00:30:00Z")
	s.get(t, "/api/analytics/sla", q, http.StatusUnprocessableEntity, &problem)
	require.Equal(t, "query.from", problem.Errors[0].Location)
}

func TestAnalyticsSLAAndAgents(t *testing.T) {
	t.Parallel()
	s := startAnalyticsServer(t)
	loc := mustZone(t, "America/Los_Angeles")
	from := time.Date(2026, 3, 7, 0, 0, 0, 0, loc)
	to := time.Date(2026, 3, 10, 0, 0, 0, 0, loc)
	fs := laFixtures(s, loc, from, to)
	prevFrom := from.Add(-to.Sub(from))
	// One first response missed in the previous period of the same length.
	prevCreated := prevFrom.Add(time.Hour)
	fs = append(fs, fixture{id: "tkt_" + s.account[4:] + "_prev", source: "web", priority: "low",
		created: prevCreated, frtMiss: ptrTime(prevCreated.Add(time.Hour))})
	s.insert(t, fs)
	require.NoError(t, s.rollup.RecomputeRange(t.Context(), prevFrom.Add(-time.Hour), to.Add(48*time.Hour)))

	in := func(x *time.Time) bool { return x != nil && !x.Before(from) && x.Before(to) }
	byPriority := map[string][2]int{}
	var assigned, messages int
	var agentFRT []float64
	for _, f := range fs {
		p := byPriority[f.priority]
		if in(f.frtMet) {
			p[0]++
		}
		if in(f.frtMiss) {
			p[1]++
		}
		byPriority[f.priority] = p
		for _, r := range f.replies {
			if in(&r) {
				messages++
			}
		}
		if f.agent != "" {
			if in(&f.created) {
				assigned++
			}
			if len(f.replies) > 0 && in(&f.replies[0]) {
				agentFRT = append(agentFRT, f.replies[0].Sub(f.created).Seconds())
			}
		}
	}

	var sla analytics.SLAReport
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	s.get(t, "/api/analytics/sla", q, http.StatusOK, &sla)
	require.Zero(t, sla.Resolution.Achieved+sla.Resolution.Breached)
	var total [2]int
	for _, pc := range sla.ByPriority {
		want := byPriority[pc.Priority]
		require.Equal(t, want[0], pc.FirstResponse.Achieved, pc.Priority)
		require.Equal(t, want[1], pc.FirstResponse.Breached, pc.Priority)
		total[0] += want[0]
		total[1] += want[1]
	}
	require.Equal(t, total[0], sla.FirstResponse.Achieved)
	require.Equal(t, total[1], sla.FirstResponse.Breached)
	// The previous period has one breach and nothing met, so its
	// compliance is 0% and the trend is the current percentage.
	require.Zero(t, sla.Previous.FirstResponse.Achieved)
	require.Equal(t, 1, sla.Previous.FirstResponse.Breached)
	require.True(t, sla.Previous.From.Equal(prevFrom))
	require.NotNil(t, sla.Trend["firstResponse"])
	require.InDelta(t, 100*float64(total[0])/float64(total[0]+total[1]), *sla.Trend["firstResponse"], 0.001)
	require.Nil(t, sla.Trend["resolution"], "no resolution outcomes in either period")

	var agents struct {
		Data []analytics.AgentStats `json:"data"`
	}
	s.get(t, "/api/analytics/agents", q, http.StatusOK, &agents)
	require.Len(t, agents.Data, 1)
	a := agents.Data[0]
	require.Equal(t, s.agent, a.AgentID)
	require.Equal(t, assigned, a.Assigned)
	require.Equal(t, messages, a.MessagesSent)
	require.Equal(t, len(agentFRT), a.FirstResponse.Count)
	requireEstimate(t, exactQuantile(agentFRT, 0.5), a.FirstResponse.MedianSeconds, "agent first response median")
}
