package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/sla"
)

// slaDetail is the part of a ticket response that this test reads.
type slaDetail struct {
	CreatedAt time.Time      `json:"createdAt"`
	SLA       *sla.TicketSLA `json:"sla"`
}

// waitForSLAEvent returns the first delivery of eventType whose data names
// ticketID. SLA events carry ticketId, not id, in their data.
func (r *receiver) waitForSLAEvent(t *testing.T, eventType, ticketID string) (delivery, sla.BreachData) {
	t.Helper()
	var found delivery
	var data sla.BreachData
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, d := range r.deliveries {
			var env envelope
			if json.Unmarshal(d.body, &env) != nil || json.Unmarshal(env.Data, &data) != nil {
				continue
			}
			if env.Event == eventType && data.TicketID == ticketID {
				found = d
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "no %s delivery for %s", eventType, ticketID)
	return found, data
}

func TestEndToEndSLABreach(t *testing.T) {
	t.Parallel()
	// Index 11 is this test's own; the other end-to-end test flushes 6.
	p := startDev(t, "e2e_sla", testenv.RedisURL(t, 11))
	recv := newReceiver(t)

	var hook idBody
	p.call(t, http.MethodPost, "/api/webhooks", map[string]any{"url": recv.URL + "/hook", "events": []string{"ticket.sla_breach"}}, http.StatusCreated, &hook)
	var account idBody
	p.call(t, http.MethodPost, "/api/accounts", map[string]any{"name": "Acme"}, http.StatusCreated, &account)
	var ticket idBody
	p.call(t, http.MethodPost, "/api/tickets", map[string]any{
		"title": "Cannot export invoices", "source": "email", "priority": "high", "accountId": account.ID,
	}, http.StatusCreated, &ticket)
	p.call(t, http.MethodPost, "/api/tickets/"+ticket.ID+"/messages", map[string]any{"authorType": "bot", "body": "Thanks, we got it."}, http.StatusCreated, nil)

	var detail slaDetail
	p.call(t, http.MethodGet, "/api/tickets/"+ticket.ID, nil, http.StatusOK, &detail)
	require.NotNil(t, detail.SLA)
	require.Equal(t, "running", string(detail.SLA.FirstResponse.State))
	require.Equal(t, detail.CreatedAt.Add(time.Hour), detail.SLA.FirstResponse.DueAt.UTC())

	// Move the due time into the past, as if the hour had gone by while
	// its task was lost: the scheduler's sweep (every second here) marks it
	// and the webhook delivers the breach once.
	db := testenv.DB(t, "e2e_sla")
	require.NoError(t, db.Exec(`UPDATE ticket_sla SET due_at = now() - interval '1 second'
		WHERE ticket_id = ? AND metric = 'first_response'`, ticket.ID).Error)
	d, data := recv.waitForSLAEvent(t, "ticket.sla_breach", ticket.ID)
	env := verifyDelivery(t, d, hook.Secret)
	require.Equal(t, "ticket.sla_breach", env.Event)
	require.Equal(t, "first_response", string(data.Metric))
	require.Equal(t, detail.SLA.PolicyID, data.PolicyID)

	p.call(t, http.MethodGet, "/api/tickets/"+ticket.ID, nil, http.StatusOK, &detail)
	require.Equal(t, "breached", string(detail.SLA.FirstResponse.State))
	require.Equal(t, "running", string(detail.SLA.Resolution.State))
}
