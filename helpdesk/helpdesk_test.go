package helpdesk_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
)

// recorder collects the events the service dispatches after each commit.
type recorder struct {
	mu     sync.Mutex
	events []models.Event
}

func (r *recorder) Dispatch(_ context.Context, events ...models.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

// fixture is a service with a pinned clock and an account to file tickets
// under.
type fixture struct {
	db      *gorm.DB
	svc     *helpdesk.Service
	events  *recorder
	now     time.Time
	account models.Account
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		db:     testenv.DB(t, "helpdesk"),
		events: &recorder{},
		now:    time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.UTC),
	}
	f.svc = helpdesk.NewService(f.db, f.events, func() time.Time { return f.now })
	acc, err := f.svc.CreateAccount(context.Background(), helpdesk.NewAccount{Name: "Acme"})
	require.NoError(t, err)
	f.account = acc
	f.events.events = nil
	return f
}

func (f *fixture) ticket(t *testing.T) models.Ticket {
	t.Helper()
	tk, err := f.svc.CreateTicket(context.Background(), helpdesk.NewTicket{
		Title: "Login fails", Priority: models.PriorityHigh, Source: models.SourceEmail, AccountID: f.account.ID,
	}, "key_test")
	require.NoError(t, err)
	return tk
}

// storedEvents returns the outbox events whose data is the record with id.
func (f *fixture) storedEvents(t *testing.T, id string) []outbox.Envelope {
	t.Helper()
	var rows []models.Event
	require.NoError(t, f.db.Where("body LIKE ?", `%"data":{"id":"`+id+`"%`).Order("created_at, id").Find(&rows).Error)
	out := make([]outbox.Envelope, len(rows))
	for i, r := range rows {
		require.NoError(t, json.Unmarshal([]byte(r.Body), &out[i]))
	}
	return out
}

func TestCreateTicketUsesClock(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tk := f.ticket(t)

	want := f.now.Truncate(time.Microsecond)
	require.Equal(t, want, tk.CreatedAt)
	require.Equal(t, want, tk.UpdatedAt)
	require.Equal(t, models.StatusOpen, tk.Status)

	var stored models.Ticket
	require.NoError(t, f.db.Take(&stored, "id = ?", tk.ID).Error)
	require.True(t, want.Equal(stored.CreatedAt), "stored %s, returned %s", stored.CreatedAt, want)
	require.Equal(t, []string{outbox.TicketCreated}, f.events.types())
}

func TestCreateTicketWritesNothingOnError(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.svc.CreateTicket(context.Background(), helpdesk.NewTicket{
		Title: "x", Priority: models.PriorityLow, Source: models.SourceWeb, AccountID: f.account.ID,
		AssigneeID: "agt_missing",
	}, "")
	var fe *outpost.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "body.assigneeId", fe.Field)

	var n int64
	require.NoError(t, f.db.Model(&models.Ticket{}).Where("account_id = ?", f.account.ID).Count(&n).Error)
	require.Zero(t, n)
	require.Empty(t, f.events.types(), "no event may be dispatched for a failed create")
}

func TestUpdateTicketStatusLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tk := f.ticket(t)

	f.now = f.now.Add(time.Hour)
	resolvedAt := f.now.Truncate(time.Microsecond)
	tk, err := f.svc.UpdateTicket(ctx, tk.ID, helpdesk.TicketPatch{Status: outpost.Value(models.StatusResolved)}, "key_test")
	require.NoError(t, err)
	require.NotNil(t, tk.ResolvedAt)
	require.Equal(t, resolvedAt, *tk.ResolvedAt)
	require.Equal(t, resolvedAt, tk.UpdatedAt)

	f.now = f.now.Add(time.Hour)
	tk, err = f.svc.UpdateTicket(ctx, tk.ID, helpdesk.TicketPatch{Status: outpost.Value(models.StatusClosed)}, "key_test")
	require.NoError(t, err)
	require.NotNil(t, tk.ClosedAt)
	require.Equal(t, resolvedAt, *tk.ResolvedAt, "closing keeps the resolution time")

	tk, err = f.svc.UpdateTicket(ctx, tk.ID, helpdesk.TicketPatch{Status: outpost.Value(models.StatusOpen)}, "key_test")
	require.NoError(t, err)
	require.Nil(t, tk.ResolvedAt, "reopening clears resolvedAt")
	require.Nil(t, tk.ClosedAt, "reopening clears closedAt")

	require.Equal(t, []string{
		outbox.TicketCreated,
		outbox.TicketUpdated, outbox.TicketResolved,
		outbox.TicketUpdated,
		outbox.TicketUpdated,
	}, f.events.types())

	d, err := f.svc.GetTicket(ctx, tk.ID)
	require.NoError(t, err)
	require.Len(t, d.History, 4, "creation and three updates")
}

func TestUpdateTicketRecordsChanges(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tk := f.ticket(t)
	agent, err := f.svc.CreateAgent(ctx, helpdesk.NewAgent{Name: "Dana", Email: "dana+" + tk.ID + "@support.example"})
	require.NoError(t, err)

	f.now = f.now.Add(time.Minute)
	_, err = f.svc.UpdateTicket(ctx, tk.ID, helpdesk.TicketPatch{
		Description: outpost.Value(""),
		Priority:    outpost.Value(models.PriorityUrgent),
		AssigneeID:  outpost.Value(agent.ID),
		Tags:        outpost.Value([]string{" vip ", "vip", "billing"}),
	}, "key_test")
	require.NoError(t, err)

	evts := f.storedEvents(t, tk.ID)
	require.Len(t, evts, 2)
	require.Equal(t, outbox.TicketUpdated, evts[1].Event)
	data := evts[1].Data.(map[string]any)
	changes := data["changes"].(map[string]any)
	require.Equal(t, map[string]any{"from": "high", "to": "urgent"}, changes["priority"])
	require.Equal(t, map[string]any{"from": nil, "to": agent.ID}, changes["assigneeId"])
	require.Equal(t, map[string]any{"from": []any{}, "to": []any{"vip", "billing"}}, changes["tags"])
	require.NotContains(t, changes, "description", "an unchanged empty description is no change")
	require.NotContains(t, changes, "title")

	_, err = f.svc.UpdateTicket(ctx, tk.ID, helpdesk.TicketPatch{AssigneeID: outpost.Field[string]{Set: true, Null: true}}, "key_test")
	require.NoError(t, err)
	got, err := f.svc.GetTicket(ctx, tk.ID)
	require.NoError(t, err)
	require.Nil(t, got.AssigneeID)
	require.Nil(t, got.Assignee)
}

func TestUpdateTicketWithoutChangeEmitsNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tk := f.ticket(t)
	before := len(f.events.types())

	same, err := f.svc.UpdateTicket(context.Background(), tk.ID, helpdesk.TicketPatch{
		Title:  outpost.Value(tk.Title),
		Status: outpost.Value(models.StatusOpen),
	}, "key_test")
	require.NoError(t, err)
	require.Equal(t, tk.UpdatedAt, same.UpdatedAt)
	require.Len(t, f.events.types(), before)
	require.Len(t, f.storedEvents(t, tk.ID), 1, "only ticket.created")
}

func TestConcurrentUpdatesKeepEveryChange(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tk := f.ticket(t)

	var wg sync.WaitGroup
	titles := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	errs := make(chan error, len(titles))
	for _, title := range titles {
		wg.Go(func() {
			_, err := f.svc.UpdateTicket(context.Background(), tk.ID, helpdesk.TicketPatch{Title: outpost.Value(title)}, "key_test")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// The row lock serializes the updates, so each one reads the previous
	// title and records a change.
	var changes int64
	require.NoError(t, f.db.Model(&models.TicketChange{}).Where("ticket_id = ?", tk.ID).Count(&changes).Error)
	require.EqualValues(t, 1+len(titles), changes)
}

func TestAddMessageRules(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tk := f.ticket(t)

	t.Run("customer cannot write internal note", func(t *testing.T) {
		_, err := f.svc.AddMessage(ctx, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorCustomer, Body: "hi", Internal: true})
		var fe *outpost.FieldError
		require.True(t, errors.As(err, &fe), "got %v", err)
		require.Equal(t, "body.internal", fe.Field)
	})

	t.Run("unknown ticket", func(t *testing.T) {
		_, err := f.svc.AddMessage(ctx, "tkt_missing", helpdesk.NewMessage{AuthorType: models.AuthorCustomer, Body: "hi"})
		require.ErrorIs(t, err, outpost.ErrNotFound)
	})

	t.Run("agent message takes agent name and bumps ticket", func(t *testing.T) {
		agent, err := f.svc.CreateAgent(ctx, helpdesk.NewAgent{Name: "Sam", Email: "sam+" + tk.ID + "@support.example"})
		require.NoError(t, err)
		f.now = f.now.Add(time.Minute)
		msg, err := f.svc.AddMessage(ctx, tk.ID, helpdesk.NewMessage{AuthorType: models.AuthorAgent, AuthorID: agent.ID, Body: "On it"})
		require.NoError(t, err)
		require.Equal(t, "Sam", msg.AuthorName)

		d, err := f.svc.GetTicket(ctx, tk.ID)
		require.NoError(t, err)
		require.Equal(t, msg.CreatedAt, d.UpdatedAt)
		require.Len(t, d.Messages, 1)
	})
}

func TestClosingOpenTicketResolvesIt(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tk := f.ticket(t)

	tk, err := f.svc.UpdateTicket(context.Background(), tk.ID, helpdesk.TicketPatch{Status: outpost.Value(models.StatusClosed)}, "key_test")
	require.NoError(t, err)
	require.NotNil(t, tk.ResolvedAt)
	require.Equal(t, []string{outbox.TicketCreated, outbox.TicketUpdated, outbox.TicketResolved}, f.events.types())

	// Closing a resolved ticket emits no second ticket.resolved.
	g := setup(t)
	other := g.ticket(t)
	ctx := context.Background()
	_, err = g.svc.UpdateTicket(ctx, other.ID, helpdesk.TicketPatch{Status: outpost.Value(models.StatusResolved)}, "key_test")
	require.NoError(t, err)
	_, err = g.svc.UpdateTicket(ctx, other.ID, helpdesk.TicketPatch{Status: outpost.Value(models.StatusClosed)}, "key_test")
	require.NoError(t, err)
	require.Equal(t, []string{
		outbox.TicketCreated, outbox.TicketUpdated, outbox.TicketResolved, outbox.TicketUpdated,
	}, g.events.types())
}
