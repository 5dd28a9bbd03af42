package sla_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/sla"
)

const seededPolicy = "slp_01m90wf0e2fv0a0hd8q122cfj6"

func TestFinishedTicketKeepsItsPolicy(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	acc := f.account(t, "")
	tk := f.ticket(t, acc.ID, models.PriorityHigh)
	f.clock.Advance(20 * time.Hour)
	f.setStatus(t, tk.ID, models.StatusResolved)
	require.Equal(t, models.SLAAchieved, f.rows(t, tk.ID)[models.MetricResolution].State)
	// The unanswered first response was missed while the ticket was open.
	before := breaches(t, f.db, tk.ID)
	require.Len(t, before, 1)
	require.Equal(t, models.MetricFirstResponse, before[0].Metric)

	// A stricter policy for the account arrives later; the finished ticket
	// is not judged by it, even when a message touches the ticket.
	f.clock.Advance(24 * time.Hour)
	f.policy(t, sla.NewPolicy{Name: "Strict", AccountIDs: []string{acc.ID},
		FirstResponse: flat(models.ClockCalendar, 10), Resolution: flat(models.ClockCalendar, 240)})
	f.clock.Advance(24 * time.Hour)
	f.message(t, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorCustomer})

	res := f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, models.SLAAchieved, res.State)
	require.Equal(t, seededPolicy, res.PolicyID)
	require.Equal(t, 24*60, res.TargetMinutes)
	require.Equal(t, before, breaches(t, f.db, tk.ID), "a finished ticket was breached after the fact")
}

func TestLowerPriorityAfterDueKeepsBreach(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityUrgent)

	// The 15-minute first response passed with the clock running, and the
	// priority drops before any task or sweep marked it.
	f.clock.Advance(16 * time.Minute)
	f.update(t, tk.ID, helpdesk.TicketPatch{Priority: outpost.Value(models.PriorityLow)})

	fr := f.rows(t, tk.ID)[models.MetricFirstResponse]
	require.Equal(t, models.SLABreached, fr.State)
	require.Equal(t, monday.Add(15*time.Minute), fr.BreachedAt.UTC())
	got := breaches(t, f.db, tk.ID)
	require.Len(t, got, 1)
	require.Equal(t, models.MetricFirstResponse, got[0].Metric)
	require.Equal(t, monday.Add(15*time.Minute), got[0].DueAt.UTC())

	// Later changes do not emit it again.
	f.clock.Advance(time.Minute)
	f.update(t, tk.ID, helpdesk.TicketPatch{Priority: outpost.Value(models.PriorityMedium)})
	require.Len(t, breaches(t, f.db, tk.ID), 1)
}

func TestClosingKeepsResolutionTime(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	tk := f.ticket(t, f.account(t, "").ID, models.PriorityHigh)
	f.clock.Advance(time.Hour)
	f.setStatus(t, tk.ID, models.StatusResolved)
	f.clock.Advance(72 * time.Hour)
	f.setStatus(t, tk.ID, models.StatusClosed)

	res := f.rows(t, tk.ID)[models.MetricResolution]
	require.Equal(t, models.SLAAchieved, res.State)
	require.Equal(t, monday.Add(time.Hour), res.AchievedAt.UTC())
}

func TestScheduleEditSkipsFinishedTickets(t *testing.T) {
	t.Parallel()
	f := setup(t, "sla", monday)
	ctx := context.Background()
	bh, err := f.engine.CreateSchedule(ctx, sla.NewSchedule{Name: "Short office", TimeZone: "UTC", Hours: weekdays("09:00", "10:00")})
	require.NoError(t, err)
	tier := uniqueTier(t)
	f.policy(t, sla.NewPolicy{
		Name: "Business", Tier: tier, BusinessHoursID: bh.ID,
		FirstResponse: flat(models.ClockBusiness, 600), Resolution: flat(models.ClockBusiness, 600),
	})
	tk := f.ticket(t, f.account(t, tier).ID, models.PriorityLow)

	// Resolved without a reply: the first-response target stays unmet but
	// finished.
	f.clock.Advance(20 * time.Hour)
	f.setStatus(t, tk.ID, models.StatusResolved)
	before := f.rows(t, tk.ID)
	events := breaches(t, f.db, tk.ID)

	f.clock.Advance(30 * 24 * time.Hour)
	_, err = f.engine.UpdateSchedule(ctx, bh.ID, sla.SchedulePatch{Hours: outpost.Value(weekdays("00:00", "23:00"))})
	require.NoError(t, err)

	after := f.rows(t, tk.ID)
	require.Equal(t, before[models.MetricFirstResponse].State, after[models.MetricFirstResponse].State)
	require.Equal(t, before[models.MetricResolution].State, after[models.MetricResolution].State)
	require.Equal(t, events, breaches(t, f.db, tk.ID), "a schedule edit breached a finished ticket")
}
