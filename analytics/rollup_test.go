package analytics_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/helpdesk"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/tasks"
	"github.com/outposthq/outpost/worker"
)

// snapshot returns the rollup rows of the account, ordered, for
// comparing two runs.
func snapshot(t *testing.T, db *gorm.DB, accountID string) []analytics.Row {
	t.Helper()
	var rows []analytics.Row
	require.NoError(t, db.Where("account_id = ?", accountID).
		Order("bucket, source, priority, agent_id").Find(&rows).Error)
	return rows
}

// TestRefreshWorker creates, resolves and reopens a ticket through the
// helpdesk service, lets a real worker run the refresh task from Redis, and
// checks that a second refresh and a reconciliation change no row.
func TestRefreshWorker(t *testing.T) {
	db := testenv.DB(t, "analytics")
	opt, err := asynq.ParseRedisURI(testenv.RedisURL(t, 10))
	require.NoError(t, err)
	queue := asynq.NewClient(opt)
	t.Cleanup(func() { require.NoError(t, queue.Close()) })
	logger := testenv.Logger(t)

	svc := helpdesk.NewService(db, outbox.NewDispatcher(db, queue, logger, nil), nil)
	ctx := t.Context()
	acc, err := svc.CreateAccount(ctx, helpdesk.NewAccount{Name: "Acme"})
	require.NoError(t, err)
	tkt, err := svc.CreateTicket(ctx, helpdesk.NewTicket{Title: "t", Priority: models.PriorityHigh,
		Source: models.SourceEmail, AccountID: acc.ID}, "test")
	require.NoError(t, err)
	for _, st := range []models.Status{models.StatusResolved, models.StatusOpen, models.StatusResolved} {
		_, err = svc.UpdateTicket(ctx, tkt.ID, helpdesk.TicketPatch{Status: outpost.Value(st)}, "test")
		require.NoError(t, err)
	}

	rollup := analytics.NewRollup(db, logger, nil)
	srv := worker.NewServer(opt, worker.Config{Concurrency: 2, PollInterval: 20 * time.Millisecond}, logger)
	require.NoError(t, srv.Start(worker.NewMux(worker.Handlers{Analytics: rollup, Logger: logger})))
	t.Cleanup(srv.Shutdown)
	_, err = queue.Enqueue(tasks.NewAnalyticsRefresh(time.Second))
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		rows := snapshot(t, db, acc.ID)
		var created, resolved, reopened int
		for _, r := range rows {
			created += r.Created
			resolved += r.Resolved
			reopened += r.Reopened
		}
		return created == 1 && resolved == 2 && reopened == 1
	}, 10*time.Second, 20*time.Millisecond)

	before := snapshot(t, db, acc.ID)
	n, err := rollup.Refresh(ctx)
	require.NoError(t, err)
	require.Positive(t, n, "the overlap rereads the last tickets")
	require.Equal(t, before, snapshot(t, db, acc.ID))
	require.NoError(t, rollup.Reconcile(ctx))
	require.NoError(t, rollup.Reconcile(ctx))
	require.Equal(t, before, snapshot(t, db, acc.ID))
}

// TestReconcileRepairsDrift overwrites a rollup row and checks that the
// reconciliation restores it from the ticket tables.
func TestReconcileRepairsDrift(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t, "analytics")
	now := time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)
	acc := "acc_drift"
	require.NoError(t, db.Exec(`INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, 'D', ?, ?)`, acc, now, now).Error)
	require.NoError(t, db.Exec(`INSERT INTO tickets (id, title, status, priority, source, account_id, created_at, updated_at)
		VALUES ('tkt_drift', 't', 'open', 'low', 'web', ?, ?, ?)`, acc, now.Add(-3*time.Hour), now.Add(-3*time.Hour)).Error)
	rollup := analytics.NewRollup(db, testenv.Logger(t), func() time.Time { return now })
	require.NoError(t, rollup.Reconcile(t.Context()))
	want := snapshot(t, db, acc)
	require.Len(t, want, 1)
	require.Equal(t, 1, want[0].Created)

	require.NoError(t, db.Exec(`UPDATE analytics_hourly SET created = 7 WHERE account_id = ?`, acc).Error)
	require.NoError(t, rollup.Reconcile(t.Context()))
	require.Equal(t, want, snapshot(t, db, acc))
}

func TestBin(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0, analytics.Bin(0.5))
	require.Equal(t, 1, analytics.Bin(1))
	require.Equal(t, 5, analytics.Bin(2))
	require.Equal(t, analytics.Bins-1, analytics.Bin(1e12))
}

// insertTicket writes a ticket of account acc created at created and
// updated at updated.
func insertTicket(t *testing.T, db *gorm.DB, id, acc string, created, updated time.Time) {
	t.Helper()
	require.NoError(t, db.Exec(`INSERT INTO tickets (id, title, status, priority, source, account_id, created_at, updated_at)
		VALUES (?, 't', 'open', 'low', 'web', ?, ?, ?)`, id, acc, created, updated).Error)
}

func TestRefreshPagesSharedTimestamp(t *testing.T) {
	// Its own database, because the refresh watermark is global.
	db := testenv.DB(t, "analytics_refresh")
	at := time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)
	acc := "acc_burst"
	require.NoError(t, db.Exec(`INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, 'B', ?, ?)`, acc, at, at).Error)
	// More tickets share one updated_at than one page holds, as after an
	// import or a burst of writes, and each was created in its own hour.
	for i, id := range []string{"tkt_burst_1", "tkt_burst_2", "tkt_burst_3"} {
		insertTicket(t, db, id, acc, at.Add(-time.Duration(i+1)*time.Hour), at)
	}

	rollup := analytics.NewRollup(db, testenv.Logger(t), func() time.Time { return at })
	rollup.RefreshBatch = 2
	_, err := rollup.Refresh(t.Context())
	require.NoError(t, err)

	created := 0
	for _, r := range snapshot(t, db, acc) {
		created += r.Created
	}
	require.Equal(t, 3, created, "a ticket beyond the first page was never rolled up")

	_, complete, err := analytics.NewReports(db).Freshness(t.Context())
	require.NoError(t, err)
	require.Equal(t, at.Add(-5*time.Second), complete, "the rollup is complete up to the watermark less the overlap")
}

func TestRefreshSeesSLAChanges(t *testing.T) {
	// Its own database, because the refresh watermark is global.
	db := testenv.DB(t, "analytics_sla_refresh")
	created := time.Date(2026, 4, 20, 8, 0, 0, 0, time.UTC)
	now := created.Add(10 * 24 * time.Hour)
	acc := "acc_sla_late"
	require.NoError(t, db.Exec(`INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, 'S', ?, ?)`, acc, created, created).Error)
	insertTicket(t, db, "tkt_sla_late", acc, created, created)
	// A later change elsewhere moves the watermark past this ticket.
	insertTicket(t, db, "tkt_sla_other", acc, now, now)
	rollup := analytics.NewRollup(db, testenv.Logger(t), func() time.Time { return now })
	_, err := rollup.Refresh(t.Context())
	require.NoError(t, err)

	// The SLA engine marks an old breach without touching the ticket, as a
	// policy change or a late sweep does.
	var policy string
	require.NoError(t, db.Raw("SELECT id FROM sla_policies WHERE is_default").Scan(&policy).Error)
	breached := created.Add(2 * time.Hour)
	require.NoError(t, db.Exec(`INSERT INTO ticket_sla (ticket_id, metric, policy_id, target_minutes, state, due_at, breached_at, updated_at)
		VALUES ('tkt_sla_late', 'resolution', ?, 120, 'breached', ?, ?, ?)`, policy, breached, breached, now.Add(time.Hour)).Error)
	_, err = rollup.Refresh(t.Context())
	require.NoError(t, err)

	got := 0
	for _, r := range snapshot(t, db, acc) {
		got += r.ResBreached
	}
	require.Equal(t, 1, got, "the rollup missed a breach the ticket row does not show")
}
