package sla_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/sla"
	"github.com/outposthq/outpost/tasks"
)

func TestDefaultPolicyTargets(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	acc := f.account(t, "")
	cases := []struct {
		priority      models.Priority
		firstResponse time.Duration
		resolution    time.Duration
	}{
		{models.PriorityUrgent, 15 * time.Minute, 4 * time.Hour},
		{models.PriorityHigh, time.Hour, 24 * time.Hour},
		{models.PriorityMedium, 4 * time.Hour, 72 * time.Hour},
		{models.PriorityLow, 24 * time.Hour, 7 * 24 * time.Hour},
	}
	for _, c := range cases {
		tk := f.ticket(t, acc.ID, c.priority)
		rows := f.rows(t, tk.ID)
		require.Len(t, rows, 2)
		fr, res := rows[models.MetricFirstResponse], rows[models.MetricResolution]
		require.Equal(t, models.SLARunning, fr.State, c.priority)
		require.Equal(t, models.SLARunning, res.State, c.priority)
		require.Equal(t, monday.Add(c.firstResponse), fr.DueAt.UTC(), c.priority)
		require.Equal(t, monday.Add(c.resolution), res.DueAt.UTC(), c.priority)
		require.Nil(t, fr.BusinessHoursID)

		v := f.view(t, tk.ID)
		require.Equal(t, "slp_01m90wf0e2fv0a0hd8q122cfj6", v.PolicyID)
		require.Equal(t, models.ClockCalendar, v.Resolution.Clock)
		require.Nil(t, v.Resolution.BusinessMinutes)
	}
}

func TestFirstResponseNeedsHumanAgent(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityHigh)
	agent := f.agent(t)

	// None of these is a first response: a bot, the system, the customer,
	// an internal note by an agent, and an agent message without an agent.
	f.clock.Advance(5 * time.Minute)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorBot, AuthorName: "Helper bot"})
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorSystem})
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorCustomer})
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: agent.ID, Internal: true})
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorName: "Someone"})
	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLARunning, fr.State)
	require.Nil(t, fr.AchievedAt)

	f.clock.Advance(5 * time.Minute)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: agent.ID})
	fr = f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLAAchieved, fr.State)
	require.Equal(t, monday.Add(10*time.Minute), fr.AchievedAt.UTC())
	require.Nil(t, fr.RunningSince)
	require.Equal(t, (10 * time.Minute).Microseconds(), fr.CalendarUsedUS)

	// A later reply changes nothing.
	f.clock.Advance(time.Hour)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: agent.ID})
	v := f.view(t, tk.ID)
	require.Equal(t, models.SLAAchieved, v.FirstResponse.State)
	require.Equal(t, 10, v.FirstResponse.CalendarMinutes)
	require.Equal(t, monday.Add(time.Hour), v.FirstResponse.DueAt.UTC(), "the due time in force when it was met")
	require.Equal(t, 70, v.Resolution.CalendarMinutes, "the resolution clock still runs")
}

func TestPendingPausesResolution(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: f.agent(t).ID})

	f.clock.Advance(time.Hour)
	f.setStatus(t, tk.ID, models.StatusPending)
	res := f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, models.SLAPaused, res.State)
	require.Nil(t, res.DueAt)
	require.Nil(t, res.RunningSince)
	require.Equal(t, time.Hour.Microseconds(), res.CalendarUsedUS)

	// Two hours waiting on the customer do not count.
	f.clock.Advance(2 * time.Hour)
	v := f.view(t, tk.ID)
	require.Equal(t, models.SLAPaused, v.Resolution.State)
	require.Equal(t, 60, v.Resolution.CalendarMinutes)
	require.Nil(t, v.Resolution.DueAt)

	f.setStatus(t, tk.ID, models.StatusOpen)
	res = f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, models.SLARunning, res.State)
	require.Equal(t, monday.Add(3*time.Hour+3*time.Hour), res.DueAt.UTC(), "resumes with the remaining three hours")
	require.Equal(t, monday.Add(3*time.Hour), res.RunningSince.UTC())
	require.Empty(t, breaches(t, f.db, tk.ID))
}

func TestPendingKeepsFirstResponseRunning(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityHigh)
	f.clock.Advance(10 * time.Minute)
	f.setStatus(t, tk.ID, models.StatusPending)
	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLARunning, fr.State)
	require.Equal(t, monday.Add(time.Hour), fr.DueAt.UTC())
}

func TestReopenResumesResolution(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: f.agent(t).ID})

	f.clock.Advance(time.Hour)
	f.setStatus(t, tk.ID, models.StatusResolved)
	res := f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, models.SLAAchieved, res.State)
	require.Equal(t, monday.Add(time.Hour), res.AchievedAt.UTC())
	require.Equal(t, monday.Add(4*time.Hour), res.DueAt.UTC())

	// Closing keeps the clock stopped; reopening four hours later resumes
	// it with the three hours left.
	f.clock.Advance(time.Hour)
	f.setStatus(t, tk.ID, models.StatusClosed)
	require.Equal(t, models.SLAAchieved, f.rows(t, tk.ID)[models.MetricResolution].State)
	f.clock.Advance(3 * time.Hour)
	f.setStatus(t, tk.ID, models.StatusOpen)
	res = f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, models.SLARunning, res.State)
	require.Nil(t, res.AchievedAt)
	require.Equal(t, monday.Add(5*time.Hour+3*time.Hour), res.DueAt.UTC())
	require.Empty(t, breaches(t, f.db, tk.ID))
}

func TestResolvedBeforeReplyPausesFirstResponse(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityHigh)
	f.clock.Advance(10 * time.Minute)
	f.setStatus(t, tk.ID, models.StatusResolved)
	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLAPaused, fr.State)
	require.Nil(t, fr.DueAt)

	// Hours later, still no breach: the clock does not run while resolved.
	f.clock.Advance(5 * time.Hour)
	f.setStatus(t, tk.ID, models.StatusOpen)
	fr = f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLARunning, fr.State)
	require.Equal(t, monday.Add(5*time.Hour+10*time.Minute+50*time.Minute), fr.DueAt.UTC())
	require.Empty(t, breaches(t, f.db, tk.ID))
}

func TestPriorityChangeRecomputesFromStart(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityLow)
	f.clock.Advance(time.Hour)
	f.setStatus(t, tk.ID, models.StatusPending)
	f.clock.Advance(time.Hour)
	f.setStatus(t, tk.ID, models.StatusOpen)
	f.clock.Advance(time.Hour)

	// Urgent allows 15 minutes to the first response, which passed long
	// ago, and 4 hours of resolution, of which 2 are used.
	f.update(t, tk.ID, helpdesk.TicketPatch{Priority: outpost.Value(models.PriorityUrgent)})
	rows := f.rows(t, tk.ID)
	res := rows[models.MetricResolution]
	require.Equal(t, models.SLARunning, res.State)
	require.Equal(t, 240, res.TargetMinutes)
	require.Equal(t, monday.Add(4*time.Hour+time.Hour), res.DueAt.UTC(), "paused hour excluded")

	fr := rows[models.MetricFirstResponse]
	require.Equal(t, models.SLABreached, fr.State)
	require.Equal(t, monday.Add(15*time.Minute), fr.BreachedAt.UTC())
	got := breaches(t, f.db, tk.ID)
	require.Len(t, got, 1, "the change marks the missed target in its own transaction")
	require.Equal(t, models.MetricFirstResponse, got[0].Metric)
	require.Equal(t, monday.Add(15*time.Minute), got[0].DueAt.UTC())
	require.Equal(t, fr.PolicyID, got[0].PolicyID)

	// Lowering the priority again does not undo the breach or emit again.
	f.update(t, tk.ID, helpdesk.TicketPatch{Priority: outpost.Value(models.PriorityLow)})
	fr = f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLABreached, fr.State)
	require.Equal(t, monday.Add(24*time.Hour), fr.DueAt.UTC())
	require.Len(t, breaches(t, f.db, tk.ID), 1)
}

func TestLateReplyIsBreach(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	f.clock.Advance(20 * time.Minute)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: f.agent(t).ID})
	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLABreached, fr.State)
	require.Equal(t, monday.Add(20*time.Minute), fr.AchievedAt.UTC())
	require.Len(t, breaches(t, f.db, tk.ID), 1)
}

func TestAccountChangeRecomputes(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tier := uniqueTier(t)
	p := f.policy(t, sla.NewPolicy{Name: "Gold", Tier: tier, FirstResponse: flat(models.ClockCalendar, 30), Resolution: flat(models.ClockCalendar, 600)})
	plain := f.account(t, "")
	gold := f.account(t, tier)
	tk := f.ticket(t, plain.ID, models.PriorityMedium)
	f.clock.Advance(10 * time.Minute)

	f.update(t, tk.ID, helpdesk.TicketPatch{AccountID: outpost.Value(gold.ID)})
	res := f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, p.ID, res.PolicyID)
	require.Equal(t, monday.Add(600*time.Minute), res.DueAt.UTC())
}

func TestAccountTierChangeRecomputes(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tier := uniqueTier(t)
	p := f.policy(t, sla.NewPolicy{Name: "Silver", Tier: tier, FirstResponse: flat(models.ClockCalendar, 45), Resolution: flat(models.ClockCalendar, 900)})
	acc := f.account(t, "")
	open := f.ticket(t, acc.ID, models.PriorityMedium)
	done := f.ticket(t, acc.ID, models.PriorityMedium)
	f.setStatus(t, done.ID, models.StatusResolved)

	_, err := f.svc.UpdateAccount(context.Background(), acc.ID, helpdesk.AccountPatch{Tier: outpost.Value(tier)})
	require.NoError(t, err)
	require.Equal(t, p.ID, f.rows(t, open.ID)[models.MetricResolution].PolicyID)
	require.Equal(t, monday.Add(45*time.Minute), f.rows(t, open.ID)[models.MetricFirstResponse].DueAt.UTC())
	require.NotEqual(t, p.ID, f.rows(t, done.ID)[models.MetricResolution].PolicyID, "finished tickets keep their policy")
}

func TestPolicySelectionOrder(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tier := uniqueTier(t)
	named := f.account(t, tier)
	tiered := f.account(t, tier)
	plain := f.account(t, "")
	byTier := f.policy(t, sla.NewPolicy{Name: "Tier", Tier: tier, FirstResponse: flat(models.ClockCalendar, 20), Resolution: flat(models.ClockCalendar, 200)})
	byAccount := f.policy(t, sla.NewPolicy{Name: "Named", AccountIDs: []string{named.ID}, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 100)})

	require.Equal(t, byAccount.ID, f.view(t, f.ticket(t, named.ID, models.PriorityLow).ID).PolicyID, "named account wins over tier")
	require.Equal(t, byTier.ID, f.view(t, f.ticket(t, tiered.ID, models.PriorityLow).ID).PolicyID, "tier wins over default")
	require.Equal(t, "slp_01m90wf0e2fv0a0hd8q122cfj6", f.view(t, f.ticket(t, plain.ID, models.PriorityLow).ID).PolicyID)
}

func TestNewPolicyRecomputesItsAccounts(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	acc := f.account(t, "")
	tk := f.ticket(t, acc.ID, models.PriorityLow)
	p := f.policy(t, sla.NewPolicy{Name: "Named", AccountIDs: []string{acc.ID}, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 100)})
	res := f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, p.ID, res.PolicyID)
	require.Equal(t, monday.Add(100*time.Minute), res.DueAt.UTC())
}

func TestDeletePolicyMovesTickets(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tier := uniqueTier(t)
	p := f.policy(t, sla.NewPolicy{Name: "Short-lived", Tier: tier, FirstResponse: flat(models.ClockCalendar, 30), Resolution: flat(models.ClockCalendar, 60)})
	tk := f.ticket(t, f.account(t, tier).ID, models.PriorityUrgent)
	require.Equal(t, p.ID, f.view(t, tk.ID).PolicyID)

	f.clock.Advance(20 * time.Minute)
	require.NoError(t, f.engine.DeletePolicy(context.Background(), p.ID))
	rows := f.rows(t, tk.ID)
	require.Equal(t, "slp_01m90wf0e2fv0a0hd8q122cfj6", rows[models.MetricResolution].PolicyID)
	require.Equal(t, monday.Add(4*time.Hour), rows[models.MetricResolution].DueAt.UTC())
	// The default's 15-minute first response passed 5 minutes ago.
	require.Equal(t, models.SLABreached, rows[models.MetricFirstResponse].State)
	require.Len(t, breaches(t, f.db, tk.ID), 1)

	_, err := f.engine.GetPolicy(context.Background(), p.ID)
	require.ErrorIs(t, err, outpost.ErrNotFound)
	err = f.engine.DeletePolicy(context.Background(), p.ID)
	require.ErrorIs(t, err, outpost.ErrNotFound)
}

// TestDefaultPolicyRules is not parallel: it moves the default flag, which
// every other test's tickets depend on, and puts it back.
func TestDefaultPolicyRules(t *testing.T) {
	f := setup(t, "sla", monday)
	ctx := context.Background()
	const seeded = "slp_01m90wf0e2fv0a0hd8q122cfj6"

	var ce *outpost.ConflictError
	require.True(t, errors.As(f.engine.DeletePolicy(ctx, seeded), &ce), "the default cannot be deleted")

	_, err := f.engine.UpdatePolicy(ctx, seeded, sla.PolicyPatch{IsDefault: outpost.Value(false)})
	var fe *outpost.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "body.isDefault", fe.Field)

	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	other := f.policy(t, sla.NewPolicy{Name: "New default", IsDefault: true, FirstResponse: flat(models.ClockCalendar, 120), Resolution: flat(models.ClockCalendar, 480)})
	require.Equal(t, other.ID, f.view(t, tk.ID).PolicyID, "tickets on the old default move")
	old, err := f.engine.GetPolicy(ctx, seeded)
	require.NoError(t, err)
	require.False(t, old.IsDefault)

	_, err = f.engine.UpdatePolicy(ctx, seeded, sla.PolicyPatch{IsDefault: outpost.Value(true)})
	require.NoError(t, err)
	require.NoError(t, f.engine.DeletePolicy(ctx, other.ID))
	require.Equal(t, seeded, f.view(t, tk.ID).PolicyID)
}

func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	ctx := context.Background()
	tier := uniqueTier(t)
	f.policy(t, sla.NewPolicy{Name: "Taken", Tier: tier, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)})
	named := f.account(t, "")
	f.policy(t, sla.NewPolicy{Name: "Named", AccountIDs: []string{named.ID}, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)})

	invalid := []struct {
		name  string
		in    sla.NewPolicy
		field string
	}{
		{"business without schedule", sla.NewPolicy{FirstResponse: flat(models.ClockBusiness, 10), Resolution: flat(models.ClockCalendar, 10)}, "body.firstResponse.clock"},
		{"unknown clock", sla.NewPolicy{FirstResponse: flat("wall", 10), Resolution: flat(models.ClockCalendar, 10)}, "body.firstResponse.clock"},
		{"zero minutes", sla.NewPolicy{FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 0)}, "body.resolution.urgent"},
		{"unknown schedule", sla.NewPolicy{BusinessHoursID: "bhr_missing", FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)}, "body.businessHoursId"},
		{"unknown account", sla.NewPolicy{AccountIDs: []string{"acc_missing"}, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)}, "body.accountIds[0]"},
		{"zero warning", sla.NewPolicy{WarnBeforeMinutes: ptr(0), FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)}, "body.warnBeforeMinutes"},
	}
	for _, c := range invalid {
		c.in.Name = c.name
		_, err := f.engine.CreatePolicy(ctx, c.in)
		var fe *outpost.FieldError
		require.True(t, errors.As(err, &fe), "%s: got %v", c.name, err)
		require.Equal(t, c.field, fe.Field, c.name)
	}

	conflicts := []struct {
		name  string
		in    sla.NewPolicy
		field string
	}{
		{"tier taken", sla.NewPolicy{Tier: tier, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)}, "body.tier"},
		{"account named twice", sla.NewPolicy{AccountIDs: []string{named.ID}, FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 10)}, "body.accountIds"},
	}
	for _, c := range conflicts {
		c.in.Name = c.name
		_, err := f.engine.CreatePolicy(ctx, c.in)
		var ce *outpost.ConflictError
		require.True(t, errors.As(err, &ce), "%s: got %v", c.name, err)
		require.Equal(t, c.field, ce.Field, c.name)
	}
}

func TestFridayEveningWithMondayHoliday(t *testing.T) {
	t.Parallel()
	// Friday 2030-05-24 19:00 in New York; Monday 2030-05-27 is Memorial Day.
	friday := time.Date(2030, 5, 24, 23, 0, 0, 0, time.UTC)
	f := setup(t, "sla", friday)
	ctx := context.Background()
	bh, err := f.engine.CreateSchedule(ctx, sla.NewSchedule{
		Name: "New York office", TimeZone: "America/New_York",
		Hours:    weekdays("09:00", "17:00"),
		Holidays: []models.Holiday{{Date: "2030-05-27", Name: "Memorial Day"}},
	})
	require.NoError(t, err)
	tier := uniqueTier(t)
	f.policy(t, sla.NewPolicy{
		Name: "Office hours", Tier: tier, BusinessHoursID: bh.ID,
		FirstResponse: flat(models.ClockBusiness, 60), Resolution: flat(models.ClockBusiness, 8*60),
	})
	tk := f.ticket(t, f.account(t, tier).ID, models.PriorityHigh)

	rows := f.rows(t, tk.ID)
	// The clock starts at the next opening, Tuesday 09:00 EDT (13:00Z).
	require.Equal(t, time.Date(2030, 5, 28, 14, 0, 0, 0, time.UTC), rows[models.MetricFirstResponse].DueAt.UTC())
	require.Equal(t, time.Date(2030, 5, 28, 21, 0, 0, 0, time.UTC), rows[models.MetricResolution].DueAt.UTC())
	require.Equal(t, bh.ID, *rows[models.MetricResolution].BusinessHoursID)

	// On Tuesday at 09:30 local, 30 business minutes have passed of the
	// 3 days and 14.5 hours since the ticket arrived.
	f.clock.Set(time.Date(2030, 5, 28, 13, 30, 0, 0, time.UTC))
	v := f.view(t, tk.ID)
	require.Equal(t, models.ClockBusiness, v.FirstResponse.Clock)
	require.Equal(t, 30, *v.FirstResponse.BusinessMinutes)
	require.Equal(t, (3*24+14)*60+30, v.FirstResponse.CalendarMinutes)
}

func TestBusinessTimeAcrossDST(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		zone    string
		created time.Time
		due     time.Time
	}{
		// 00:30 EST plus two business hours is 03:30 EDT: the skipped hour
		// is not counted.
		{"new york spring", "America/New_York", time.Date(2030, 3, 10, 5, 30, 0, 0, time.UTC), time.Date(2030, 3, 10, 7, 30, 0, 0, time.UTC)},
		// 00:30 EDT plus two business hours is the second 01:30, in EST.
		{"new york autumn", "America/New_York", time.Date(2030, 11, 3, 4, 30, 0, 0, time.UTC), time.Date(2030, 11, 3, 6, 30, 0, 0, time.UTC)},
		// 01:30 CET plus two business hours is 04:30 CEST.
		{"berlin spring", "Europe/Berlin", time.Date(2030, 3, 31, 0, 30, 0, 0, time.UTC), time.Date(2030, 3, 31, 2, 30, 0, 0, time.UTC)},
		// 01:30 CEST plus two business hours is 02:30 CET, the second one.
		{"berlin autumn", "Europe/Berlin", time.Date(2030, 10, 26, 23, 30, 0, 0, time.UTC), time.Date(2030, 10, 27, 1, 30, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, "sla", c.created)
			bh, err := f.engine.CreateSchedule(context.Background(), sla.NewSchedule{
				Name: c.name, TimeZone: c.zone,
				Hours: []models.OpeningHours{{Weekday: "sunday", Start: "00:00", End: "08:00"}},
			})
			require.NoError(t, err)
			tier := uniqueTier(t)
			f.policy(t, sla.NewPolicy{
				Name: c.name, Tier: tier, BusinessHoursID: bh.ID,
				FirstResponse: flat(models.ClockBusiness, 120), Resolution: flat(models.ClockCalendar, 600),
			})
			tk := f.ticket(t, f.account(t, tier).ID, models.PriorityHigh)
			require.Equal(t, c.due, f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt.UTC())

			f.clock.Set(c.due)
			v := f.view(t, tk.ID)
			require.Equal(t, 120, *v.FirstResponse.BusinessMinutes)
			require.Equal(t, 120, v.FirstResponse.CalendarMinutes)
		})
	}
}

func TestWarningCountsBusinessTime(t *testing.T) {
	t.Parallel()
	// Friday 2030-05-31 15:40 in New York: 80 business minutes are left
	// that day, so a 90-minute target is due Monday 09:10 and its warning,
	// 30 business minutes earlier, Friday 16:40.
	friday := time.Date(2030, 5, 31, 19, 40, 0, 0, time.UTC)
	f := setup(t, "sla", friday)
	bh, err := f.engine.CreateSchedule(context.Background(), sla.NewSchedule{
		Name: "Office", TimeZone: "America/New_York", Hours: weekdays("09:00", "17:00"),
	})
	require.NoError(t, err)
	tier := uniqueTier(t)
	f.policy(t, sla.NewPolicy{
		Name: "Warned", Tier: tier, BusinessHoursID: bh.ID, WarnBeforeMinutes: ptr(30),
		FirstResponse: flat(models.ClockBusiness, 90), Resolution: flat(models.ClockCalendar, 6000),
	})
	tk := f.ticket(t, f.account(t, tier).ID, models.PriorityHigh)
	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, time.Date(2030, 6, 3, 13, 10, 0, 0, time.UTC), fr.DueAt.UTC())
	require.Equal(t, time.Date(2030, 5, 31, 20, 40, 0, 0, time.UTC), fr.WarnAt.UTC())
	require.Equal(t, friday.Add(6000*time.Minute-30*time.Minute), f.rows(t, tk.ID)[models.MetricResolution].WarnAt.UTC())

	// A change after the warning time emits the warning in its own
	// transaction, once.
	f.clock.Set(time.Date(2030, 5, 31, 20, 50, 0, 0, time.UTC))
	f.update(t, tk.ID, helpdesk.TicketPatch{Title: outpost.Value("Export still fails")})
	f.update(t, tk.ID, helpdesk.TicketPatch{Title: outpost.Value("Export fails again")})
	got := warnings(t, f.db, tk.ID)
	require.Len(t, got, 1)
	require.Equal(t, models.MetricFirstResponse, got[0].Metric)
	require.Equal(t, fr.WarnAt.UTC(), got[0].WarnAt.UTC())
	require.NotNil(t, f.rows(t, tk.ID)[models.MetricFirstResponse].WarnedAt)
}

func TestStaleBreachTaskDoesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	oldDue := *f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt
	f.update(t, tk.ID, helpdesk.TicketPatch{Priority: outpost.Value(models.PriorityLow)})

	// The task armed for the old due time runs after it and finds the
	// target due later.
	f.clock.Set(oldDue.Add(time.Minute))
	marked, err := f.engine.CheckBreach(context.Background(), tk.ID, models.MetricFirstResponse, oldDue)
	require.NoError(t, err)
	require.False(t, marked)
	require.Equal(t, models.SLARunning, f.rows(t, tk.ID)[models.MetricFirstResponse].State)
	require.Empty(t, breaches(t, f.db, tk.ID))
}

func TestConcurrentChecksBreachOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	due := *f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt
	f.clock.Set(due.Add(time.Second))

	var wg sync.WaitGroup
	var marked atomic.Int32
	for range 8 {
		wg.Go(func() {
			ok, err := f.engine.CheckBreach(context.Background(), tk.ID, models.MetricFirstResponse, due)
			require.NoError(t, err)
			if ok {
				marked.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), marked.Load())
	got := breaches(t, f.db, tk.ID)
	require.Len(t, got, 1)
	require.Equal(t, due.UTC(), got[0].DueAt.UTC())

	// A change after the breach keeps it, and emits nothing more.
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: f.agent(t).ID})
	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLABreached, fr.State)
	require.Equal(t, due.UTC(), fr.BreachedAt.UTC())
	require.NotNil(t, fr.AchievedAt)
	require.Len(t, breaches(t, f.db, tk.ID), 1)
}

func TestArmsOneTaskPerDueTime(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	inspector := asynq.NewInspector(redisOpt(t))
	t.Cleanup(func() { _ = inspector.Close() })
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)
	metric := string(models.MetricFirstResponse)
	due := *f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt

	info, err := inspector.GetTaskInfo(tasks.QueueSLA, tasks.SLATaskID(tasks.TypeSLABreach, tk.ID, metric, due))
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateScheduled, info.State)
	require.Equal(t, due.Add(-time.Second).Unix(), info.NextProcessAt.Unix(), "armed a second early")

	// A title change keeps the due time and arms nothing new; a priority
	// change moves it and arms a task for the new time only.
	f.update(t, tk.ID, helpdesk.TicketPatch{Title: outpost.Value("Renamed")})
	f.update(t, tk.ID, helpdesk.TicketPatch{Priority: outpost.Value(models.PriorityHigh)})
	moved := *f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt
	require.Equal(t, monday.Add(time.Hour), moved.UTC())
	info, err = inspector.GetTaskInfo(tasks.QueueSLA, tasks.SLATaskID(tasks.TypeSLABreach, tk.ID, metric, moved))
	require.NoError(t, err)
	require.Equal(t, moved.Add(-time.Second).Unix(), info.NextProcessAt.Unix())
}

func weekdays(start, end string) []models.OpeningHours {
	var out []models.OpeningHours
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday"} {
		out = append(out, models.OpeningHours{Weekday: d, Start: start, End: end})
	}
	return out
}

func TestBackfillComputesMissingState(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	acc := f.account(t, "")
	// Written without the service, as before the SLA migration: no SLA
	// rows and no change history.
	old := models.Ticket{
		ID: models.NewID(models.PrefixTicket), Title: "Imported", Status: models.StatusOpen,
		Priority: models.PriorityHigh, Source: models.SourceAPI, AccountID: acc.ID, Tags: pq.StringArray{},
		CreatedAt: monday.Add(-30 * time.Minute), UpdatedAt: monday.Add(-30 * time.Minute),
	}
	require.NoError(t, f.db.Create(&old).Error)
	require.Empty(t, f.rows(t, old.ID))

	n, err := f.engine.Backfill(context.Background(), 2)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 1)
	rows := f.rows(t, old.ID)
	require.Equal(t, monday.Add(30*time.Minute), rows[models.MetricFirstResponse].DueAt.UTC())
	require.Equal(t, models.SLARunning, rows[models.MetricResolution].State)

	n, err = f.engine.Backfill(context.Background(), 2)
	require.NoError(t, err)
	require.Zero(t, n, "a second run finds nothing to do")
}

func TestScheduleUpdateRecomputes(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday) // Monday 12:00 UTC
	ctx := context.Background()
	bh, err := f.engine.CreateSchedule(ctx, sla.NewSchedule{Name: "UTC office", TimeZone: "UTC", Hours: weekdays("09:00", "17:00")})
	require.NoError(t, err)
	tier := uniqueTier(t)
	f.policy(t, sla.NewPolicy{
		Name: "Office", Tier: tier, BusinessHoursID: bh.ID,
		FirstResponse: flat(models.ClockBusiness, 8*60), Resolution: flat(models.ClockCalendar, 6000),
	})
	tk := f.ticket(t, f.account(t, tier).ID, models.PriorityLow)
	require.Equal(t, monday.Add(24*time.Hour), f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt.UTC(), "5 hours on Monday, 3 on Tuesday")

	// Closing Tuesday for a holiday moves the due time to Wednesday.
	_, err = f.engine.UpdateSchedule(ctx, bh.ID, sla.SchedulePatch{Holidays: outpost.Value([]models.Holiday{{Date: "2030-06-04"}})})
	require.NoError(t, err)
	require.Equal(t, monday.Add(48*time.Hour), f.rows(t, tk.ID)[models.MetricFirstResponse].DueAt.UTC())

	_, err = f.engine.UpdateSchedule(ctx, bh.ID, sla.SchedulePatch{Hours: outpost.Value([]models.OpeningHours{})})
	var fe *outpost.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "body.hours", fe.Field)
}
