package webhooks

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/paging"
)

// futureClock dates endpoints a century ahead, so that no fan-out of a
// present-day event in another test adds deliveries to them.
func futureClock() time.Time { return time.Now().AddDate(100, 0, 0) }

func requireFieldError(t *testing.T, err error, field string) *outpost.FieldError {
	t.Helper()
	var fe *outpost.FieldError
	require.True(t, errors.As(err, &fe), "want a FieldError, got %v", err)
	require.Equal(t, field, fe.Field)
	return fe
}

func TestCreateEndpointRejectsBadURL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	eps := privateEndpoints(e.db, nil)
	events := []string{outbox.TicketCreated}

	cases := []struct {
		name string
		url  string
	}{
		{"empty", ""},
		{"relative", "/hooks/outpost"},
		{"no host", "https:///hooks"},
		{"port without host", "http://:8080/hooks"},
		{"ftp scheme", "ftp://127.0.0.1/hooks"},
		{"credentials", "https://user:hunter2@127.0.0.1/hooks"},
		{"fragment", "https://127.0.0.1/hooks#part"},
		{"too long", "https://127.0.0.1/" + strings.Repeat("a", maxURLLength)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eps.Create(context.Background(), NewEndpoint{URL: tc.url, Events: events})
			requireFieldError(t, err, "body.url")
		})
	}
}

func TestCreateEndpointRedactsCredentials(t *testing.T) {
	t.Parallel()
	e := setup(t)
	eps := privateEndpoints(e.db, nil)

	_, err := eps.Create(context.Background(), NewEndpoint{
		URL:    "https://user:hunter2@127.0.0.1/hooks",
		Events: []string{outbox.TicketCreated},
	})
	fe := requireFieldError(t, err, "body.url")
	require.NotContains(t, fe.Error(), "hunter2")
	value, _ := fe.Value.(string)
	require.NotContains(t, value, "hunter2")
}

func TestCreateEndpointRejectsBadEvents(t *testing.T) {
	t.Parallel()
	e := setup(t)
	eps := privateEndpoints(e.db, nil)

	cases := []struct {
		name   string
		events []string
		field  string
	}{
		{"nil list", nil, "body.events"},
		{"empty list", []string{}, "body.events"},
		{"unknown first", []string{"ticket.deleted"}, "body.events[0]"},
		{"unknown second", []string{outbox.TicketCreated, "ticket.deleted"}, "body.events[1]"},
		{"empty name", []string{outbox.TicketCreated, outbox.TicketUpdated, ""}, "body.events[2]"},
		{"star with others", []string{AllEvents, outbox.TicketCreated}, "body.events"},
		{"others with star", []string{outbox.MessageCreated, AllEvents}, "body.events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eps.Create(context.Background(), NewEndpoint{URL: "https://127.0.0.1/hooks", Events: tc.events})
			requireFieldError(t, err, tc.field)
		})
	}
}

func TestCreateEndpointStoresEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	at := futureClock().UTC().Truncate(time.Microsecond)
	eps := privateEndpoints(e.db, func() time.Time { return at })

	ep, err := eps.Create(ctx, NewEndpoint{
		URL:         "https://127.0.0.1:8443/hooks?tenant=1",
		Events:      []string{outbox.TicketUpdated, outbox.TicketCreated, outbox.TicketUpdated},
		Description: "CRM sync",
	})
	require.NoError(t, err)

	t.Run("returned endpoint", func(t *testing.T) {
		require.True(t, models.ValidID(models.PrefixEndpoint, ep.ID), ep.ID)
		require.True(t, ep.Enabled)
		require.Equal(t, pq.StringArray{outbox.TicketCreated, outbox.TicketUpdated}, ep.Events)
		require.True(t, strings.HasPrefix(ep.Secret, "whsec_"), "secret %q", ep.Secret)
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ep.Secret, "whsec_"))
		require.NoError(t, err)
		require.Len(t, key, 32)
		require.True(t, ep.CreatedAt.Equal(at))
		require.True(t, ep.UpdatedAt.Equal(at))
	})

	t.Run("stored endpoint", func(t *testing.T) {
		got, err := eps.Get(ctx, ep.ID)
		require.NoError(t, err)
		require.Equal(t, ep.URL, got.URL)
		require.Equal(t, "CRM sync", got.Description)
		require.Equal(t, ep.Events, got.Events)
		require.Equal(t, ep.Secret, got.Secret)
		require.True(t, got.Enabled)
		require.True(t, got.CreatedAt.Equal(at))
	})

	t.Run("star alone", func(t *testing.T) {
		all, err := eps.Create(ctx, NewEndpoint{URL: "http://127.0.0.1/all", Events: []string{AllEvents, AllEvents}})
		require.NoError(t, err)
		require.Equal(t, pq.StringArray{AllEvents}, all.Events)
	})

	t.Run("secrets differ", func(t *testing.T) {
		other, err := eps.Create(ctx, NewEndpoint{URL: "http://127.0.0.1/other", Events: []string{AllEvents}})
		require.NoError(t, err)
		require.NotEqual(t, ep.Secret, other.Secret)
	})
}

func TestUpdateEndpointMergePatch(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	clock := newStepClock(futureClock().UTC().Truncate(time.Second), time.Minute)
	eps := privateEndpoints(e.db, clock.Now)

	ep, err := eps.Create(ctx, NewEndpoint{
		URL:         "https://127.0.0.1/hooks",
		Events:      []string{outbox.TicketCreated},
		Description: "before",
	})
	require.NoError(t, err)

	t.Run("description only", func(t *testing.T) {
		got, err := eps.Update(ctx, ep.ID, EndpointPatch{Description: outpost.Value("after")})
		require.NoError(t, err)
		require.Equal(t, "after", got.Description)
		require.Equal(t, ep.URL, got.URL)
		require.Equal(t, ep.Events, got.Events)
		require.Equal(t, ep.Secret, got.Secret)
		require.True(t, got.Enabled)
		require.True(t, got.CreatedAt.Equal(ep.CreatedAt))
		require.True(t, got.UpdatedAt.After(ep.UpdatedAt), "updatedAt %s, created %s", got.UpdatedAt, ep.UpdatedAt)
	})

	t.Run("url and events", func(t *testing.T) {
		got, err := eps.Update(ctx, ep.ID, EndpointPatch{
			URL:    outpost.Value("http://127.0.0.1:8080/v2"),
			Events: outpost.Value([]string{outbox.MessageCreated, outbox.AccountCreated}),
		})
		require.NoError(t, err)
		require.Equal(t, "http://127.0.0.1:8080/v2", got.URL)
		require.Equal(t, pq.StringArray{outbox.AccountCreated, outbox.MessageCreated}, got.Events)
		require.Equal(t, "after", got.Description)
	})

	t.Run("disable is stored", func(t *testing.T) {
		_, err := eps.Update(ctx, ep.ID, EndpointPatch{Enabled: outpost.Value(false)})
		require.NoError(t, err)
		got, err := eps.Get(ctx, ep.ID)
		require.NoError(t, err)
		require.False(t, got.Enabled)
		require.Equal(t, "http://127.0.0.1:8080/v2", got.URL)
	})

	t.Run("invalid url keeps row", func(t *testing.T) {
		_, err := eps.Update(ctx, ep.ID, EndpointPatch{
			URL:         outpost.Value("ftp://127.0.0.1/x"),
			Description: outpost.Value("never stored"),
		})
		requireFieldError(t, err, "body.url")
		got, err := eps.Get(ctx, ep.ID)
		require.NoError(t, err)
		require.Equal(t, "http://127.0.0.1:8080/v2", got.URL)
		require.Equal(t, "after", got.Description)
	})

	t.Run("invalid events", func(t *testing.T) {
		_, err := eps.Update(ctx, ep.ID, EndpointPatch{Events: outpost.Value([]string{outbox.TicketCreated, "nope"})})
		requireFieldError(t, err, "body.events[1]")
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		_, err := eps.Update(ctx, models.NewID(models.PrefixEndpoint), EndpointPatch{Description: outpost.Value("x")})
		require.ErrorIs(t, err, outpost.ErrNotFound)
	})
}

func TestDeleteEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	eps := privateEndpoints(e.db, futureClock)

	ep, err := eps.Create(ctx, NewEndpoint{URL: "https://127.0.0.1/hooks", Events: []string{AllEvents}})
	require.NoError(t, err)
	evt := appendEvent(t, e.db, time.Now(), outbox.TicketCreated)
	dlv := insertDelivery(t, e, ep.ID, evt, time.Now())

	require.NoError(t, eps.Delete(ctx, ep.ID))

	_, err = eps.Get(ctx, ep.ID)
	require.ErrorIs(t, err, outpost.ErrNotFound)

	var left int64
	require.NoError(t, e.db.Model(&models.WebhookDelivery{}).Where("id = ?", dlv.ID).Count(&left).Error)
	require.Zero(t, left, "delivery of the deleted endpoint")

	err = eps.Delete(ctx, ep.ID)
	require.ErrorIs(t, err, outpost.ErrNotFound)
}

func TestListEndpointsPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	clock := newStepClock(futureClock().UTC().Truncate(time.Second), time.Second)
	eps := privateEndpoints(e.db, clock.Now)

	var mine []string
	for range 5 {
		ep, err := eps.Create(ctx, NewEndpoint{URL: "https://127.0.0.1/hooks", Events: []string{AllEvents}})
		require.NoError(t, err)
		mine = append(mine, ep.ID)
	}

	// Other tests add endpoints to the same table, so walk every page and
	// check the order of this test's endpoints within the whole list.
	var seen []string
	var last time.Time
	params := paging.Params{Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "pagination does not end")
		rows, next, err := eps.List(ctx, params)
		require.NoError(t, err)
		require.LessOrEqual(t, len(rows), 2)
		for _, ep := range rows {
			require.False(t, ep.CreatedAt.Before(last), "endpoint %s is out of order", ep.ID)
			last = ep.CreatedAt
			require.NotContains(t, seen, ep.ID, "endpoint listed twice")
			seen = append(seen, ep.ID)
		}
		if next == nil {
			break
		}
		params.Cursor = *next
	}

	var got []string
	for _, id := range seen {
		if slices.Contains(mine, id) {
			got = append(got, id)
		}
	}
	require.Equal(t, mine, got)
}

func TestListEndpointsRejectsBadSort(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, _, err := privateEndpoints(e.db, nil).List(context.Background(), paging.Params{Sort: "url"})
	requireFieldError(t, err, "query.sort")
}

func TestListDeliveriesFilters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	eps := privateEndpoints(e.db, futureClock)

	ep, err := eps.Create(ctx, NewEndpoint{URL: "https://127.0.0.1/hooks", Events: []string{AllEvents}})
	require.NoError(t, err)

	base := time.Now().UTC().Truncate(time.Second)
	created := appendEvent(t, e.db, base, outbox.TicketCreated)
	updated := appendEvent(t, e.db, base, outbox.TicketUpdated)
	message := appendEvent(t, e.db, base, outbox.MessageCreated)

	pendingCreated := insertDelivery(t, e, ep.ID, created, base.Add(1*time.Second))
	failedUpdated := insertDelivery(t, e, ep.ID, updated, base.Add(2*time.Second))
	pendingMessage := insertDelivery(t, e, ep.ID, message, base.Add(3*time.Second))
	require.NoError(t, e.db.Model(&models.WebhookDelivery{}).Where("id = ?", failedUpdated.ID).
		Update("status", models.DeliveryFailed).Error)
	code := 500
	attempt := models.WebhookAttempt{
		ID: models.NewID(models.PrefixAttempt), DeliveryID: failedUpdated.ID, Number: 1,
		StartedAt: base, DurationMS: 12, StatusCode: &code, Error: "HTTP 500",
	}
	require.NoError(t, e.db.Create(&attempt).Error)

	ids := func(rows []models.WebhookDelivery) []string {
		var out []string
		for _, d := range rows {
			out = append(out, d.ID)
		}
		return out
	}

	t.Run("no filter newest first", func(t *testing.T) {
		rows, next, err := eps.ListDeliveries(ctx, ep.ID, DeliveryFilter{}, paging.Params{})
		require.NoError(t, err)
		require.Nil(t, next)
		require.Equal(t, []string{pendingMessage.ID, failedUpdated.ID, pendingCreated.ID}, ids(rows))
	})

	t.Run("by status", func(t *testing.T) {
		rows, _, err := eps.ListDeliveries(ctx, ep.ID, DeliveryFilter{Status: models.DeliveryPending}, paging.Params{})
		require.NoError(t, err)
		require.Equal(t, []string{pendingMessage.ID, pendingCreated.ID}, ids(rows))
	})

	t.Run("by event type", func(t *testing.T) {
		rows, _, err := eps.ListDeliveries(ctx, ep.ID, DeliveryFilter{EventType: outbox.TicketUpdated}, paging.Params{})
		require.NoError(t, err)
		require.Equal(t, []string{failedUpdated.ID}, ids(rows))
		require.Len(t, rows[0].Attempts, 1)
		require.Equal(t, attempt.ID, rows[0].Attempts[0].ID)
		require.Equal(t, &code, rows[0].Attempts[0].StatusCode)
	})

	t.Run("by status and type", func(t *testing.T) {
		rows, _, err := eps.ListDeliveries(ctx, ep.ID,
			DeliveryFilter{Status: models.DeliveryPending, EventType: outbox.TicketUpdated}, paging.Params{})
		require.NoError(t, err)
		require.Empty(t, rows)
	})

	t.Run("pages", func(t *testing.T) {
		first, next, err := eps.ListDeliveries(ctx, ep.ID, DeliveryFilter{}, paging.Params{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{pendingMessage.ID, failedUpdated.ID}, ids(first))
		require.NotNil(t, next)

		second, next, err := eps.ListDeliveries(ctx, ep.ID, DeliveryFilter{}, paging.Params{Limit: 2, Cursor: *next})
		require.NoError(t, err)
		require.Equal(t, []string{pendingCreated.ID}, ids(second))
		require.Nil(t, next)
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		_, _, err := eps.ListDeliveries(ctx, models.NewID(models.PrefixEndpoint), DeliveryFilter{}, paging.Params{})
		require.ErrorIs(t, err, outpost.ErrNotFound)
	})
}
