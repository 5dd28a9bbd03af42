// Package analytics keeps hourly rollups of ticket facts and computes the
// analytics reports from them.
//
// The rollup table analytics_hourly holds one row per UTC hour and
// combination of source, priority, account and agent. Each hour is always
// rewritten whole from the ticket tables (delete and insert in one
// transaction), so recomputing an hour twice changes nothing. Two tasks
// keep it current: Refresh recomputes the hours touched by tickets whose
// updated_at moved since its watermark, and Reconcile recomputes the recent
// hours to repair anything Refresh missed, such as SLA breaches marked by
// the sweep, which do not touch the ticket.
package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"gorm.io/gorm"
)

// Bins is the number of duration histogram bins. Bin 0 counts durations
// under one second and bin k (1 ≤ k < Bins) counts [2^((k-1)/4), 2^(k/4))
// seconds; the last bin is open-ended from about 327 days.
const Bins = 101

// binSQL is the SQL form of Bin, applied to a duration in seconds.
const binSQL = `LEAST(%d, CASE WHEN (%s) < 1 THEN 0 ELSE 1 + floor(4 * ln(%s) / ln(2))::int END)`

// Bin returns the histogram bin of a duration of seconds.
func Bin(seconds float64) int {
	if seconds < 1 {
		return 0
	}
	return min(Bins-1, 1+int(math.Floor(4*math.Log2(seconds))))
}

// binLower returns the lower bound of bin k in seconds.
func binLower(k int) float64 {
	if k == 0 {
		return 0
	}
	return math.Pow(2, float64(k-1)/4)
}

// Row is one rollup row.
type Row struct {
	Bucket       time.Time
	Source       string
	Priority     string
	AccountID    string
	AgentID      string
	Created      int
	Resolved     int
	Reopened     int
	MessagesSent int
	// The histograms live in analytics_hourly_durations, one row per
	// non-empty bin; nil means no durations.
	FirstResponseHist   []int64 `gorm:"-"`
	FirstResolutionHist []int64 `gorm:"-"`
	FullResolutionHist  []int64 `gorm:"-"`
	FRTAchieved         int     `gorm:"column:frt_achieved"`
	FRTBreached         int     `gorm:"column:frt_breached"`
	ResAchieved         int
	ResBreached         int
}

// TableName names the rollup table for gorm.
func (Row) TableName() string { return "analytics_hourly" }

// Rollup computes and stores the hourly rollups.
type Rollup struct {
	db      *gorm.DB
	logger  *slog.Logger
	nowFunc func() time.Time

	// ReconcileWindow is how many hours back from now Reconcile
	// recomputes. Default 48h.
	ReconcileWindow time.Duration
	// RefreshBatch bounds the tickets one Refresh reads. Default 5000.
	RefreshBatch int
}

// NewRollup returns a Rollup over db. nowFunc is the clock; nil means
// time.Now.
func NewRollup(db *gorm.DB, logger *slog.Logger, nowFunc func() time.Time) *Rollup {
	if nowFunc == nil {
		nowFunc = time.Now
	}
	return &Rollup{db: db, logger: logger, nowFunc: nowFunc, ReconcileWindow: 48 * time.Hour, RefreshBatch: 5000}
}

// rollupLock is the advisory lock key that serializes rollup writers, so
// a refresh and a reconciliation never interleave their delete and insert
// of the same hour.
const rollupLock = 0x616e616c

// isResolveSQL matches a ticket_changes row that resolves the ticket: to
// resolved, or to closed from anything but resolved, the same rule that
// emits ticket.resolved.
const isResolveSQL = `(c.changes->'status'->>'to' = 'resolved' OR
	(c.changes->'status'->>'to' = 'closed' AND coalesce(c.changes->'status'->>'from', '') <> 'resolved'))`

// isReplySQL matches a public message by a human agent, the message that
// counts as a first response.
const isReplySQL = `m.author_type = 'agent' AND m.author_id IS NOT NULL AND NOT m.internal`

func hist(col string) string {
	return fmt.Sprintf(binSQL, Bins-1, col, col)
}

// factsSQL lists every fact in [@from, @to) as one row with its hour, the
// ticket's dimensions, a kind and, for durations, a histogram bin.
var factsSQL = `
SELECT date_trunc('hour', t.created_at, 'UTC') AS bucket, t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, '') AS agent_id, 'created' AS kind, 0 AS bin
FROM tickets t WHERE t.created_at >= @from AND t.created_at < @to
UNION ALL
SELECT date_trunc('hour', c.created_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), 'resolved', 0
FROM ticket_changes c JOIN tickets t ON t.id = c.ticket_id
WHERE c.created_at >= @from AND c.created_at < @to AND ` + isResolveSQL + `
UNION ALL
SELECT date_trunc('hour', c.created_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), 'first_resolution',
	` + hist(`extract(epoch FROM c.created_at - t.created_at)`) + `
FROM ticket_changes c JOIN tickets t ON t.id = c.ticket_id
WHERE c.created_at >= @from AND c.created_at < @to AND ` + isResolveSQL + `
	AND NOT EXISTS (SELECT 1 FROM ticket_changes c2 WHERE c2.ticket_id = c.ticket_id
		AND (c2.created_at, c2.id) < (c.created_at, c.id)
		AND (c2.changes->'status'->>'to' = 'resolved' OR
			(c2.changes->'status'->>'to' = 'closed' AND coalesce(c2.changes->'status'->>'from', '') <> 'resolved')))
UNION ALL
SELECT date_trunc('hour', c.created_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), 'reopened', 0
FROM ticket_changes c JOIN tickets t ON t.id = c.ticket_id
WHERE c.created_at >= @from AND c.created_at < @to
	AND c.changes->'status'->>'from' IN ('resolved', 'closed')
	AND c.changes->'status'->>'to' IN ('open', 'pending')
UNION ALL
SELECT date_trunc('hour', t.resolved_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), 'full_resolution',
	` + hist(`extract(epoch FROM t.resolved_at - t.created_at)`) + `
FROM tickets t WHERE t.resolved_at >= @from AND t.resolved_at < @to
UNION ALL
SELECT date_trunc('hour', m.created_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), 'first_response',
	` + hist(`extract(epoch FROM m.created_at - t.created_at)`) + `
FROM messages m JOIN tickets t ON t.id = m.ticket_id
WHERE m.created_at >= @from AND m.created_at < @to AND ` + isReplySQL + `
	AND NOT EXISTS (SELECT 1 FROM messages m2 WHERE m2.ticket_id = m.ticket_id
		AND m2.author_type = 'agent' AND m2.author_id IS NOT NULL AND NOT m2.internal
		AND (m2.created_at, m2.id) < (m.created_at, m.id))
UNION ALL
SELECT date_trunc('hour', m.created_at, 'UTC'), t.source, t.priority, t.account_id,
	m.author_id, 'message', 0
FROM messages m JOIN tickets t ON t.id = m.ticket_id
WHERE m.created_at >= @from AND m.created_at < @to AND ` + isReplySQL + `
UNION ALL
SELECT date_trunc('hour', s.breached_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), s.metric || '_breached', 0
FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id
WHERE s.breached_at >= @from AND s.breached_at < @to
UNION ALL
SELECT date_trunc('hour', s.achieved_at, 'UTC'), t.source, t.priority, t.account_id,
	coalesce(t.assignee_id, ''), s.metric || '_achieved', 0
FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id
WHERE s.achieved_at >= @from AND s.achieved_at < @to AND s.breached_at IS NULL`

// fact is one row of the grouped facts query.
type fact struct {
	Bucket    time.Time
	Source    string
	Priority  string
	AccountID string
	AgentID   string
	Kind      string
	Bin       int
	N         int
}

type rowKey struct {
	bucket                           time.Time
	source, priority, account, agent string
}

// computeRows aggregates the facts of [from, to) into rollup rows, read
// straight from the ticket tables.
func computeRows(ctx context.Context, db *gorm.DB, from, to time.Time, f Filter) ([]Row, error) {
	where, args := f.sql("")
	args["from"] = from
	args["to"] = to
	var facts []fact
	q := `SELECT bucket, source, priority, account_id, agent_id, kind, bin, count(*) AS n FROM (` +
		factsSQL + `) f ` + where + ` GROUP BY 1, 2, 3, 4, 5, 6, 7`
	if err := db.WithContext(ctx).Raw(q, args).Scan(&facts).Error; err != nil {
		return nil, fmt.Errorf("compute rollup facts: %w", err)
	}

	rows := map[rowKey]*Row{}
	var order []rowKey
	for _, ft := range facts {
		k := rowKey{ft.Bucket.UTC(), ft.Source, ft.Priority, ft.AccountID, ft.AgentID}
		r, ok := rows[k]
		if !ok {
			r = &Row{Bucket: k.bucket, Source: k.source, Priority: k.priority, AccountID: k.account, AgentID: k.agent}
			rows[k] = r
			order = append(order, k)
		}
		switch ft.Kind {
		case "created":
			r.Created += ft.N
		case "resolved":
			r.Resolved += ft.N
		case "reopened":
			r.Reopened += ft.N
		case "message":
			r.MessagesSent += ft.N
		case "first_response":
			r.FirstResponseHist = addBin(r.FirstResponseHist, ft.Bin, ft.N)
		case "first_resolution":
			r.FirstResolutionHist = addBin(r.FirstResolutionHist, ft.Bin, ft.N)
		case "full_resolution":
			r.FullResolutionHist = addBin(r.FullResolutionHist, ft.Bin, ft.N)
		case "first_response_achieved":
			r.FRTAchieved += ft.N
		case "first_response_breached":
			r.FRTBreached += ft.N
		case "resolution_achieved":
			r.ResAchieved += ft.N
		case "resolution_breached":
			r.ResBreached += ft.N
		}
	}

	out := make([]Row, 0, len(order))
	for _, k := range order {
		out = append(out, *rows[k])
	}
	return out, nil
}

func addBin(h []int64, bin, n int) []int64 {
	if len(h) == 0 {
		h = make([]int64, Bins)
	}
	h[bin] += int64(n)
	return h
}

// durationRow is one non-empty histogram bin of analytics_hourly_durations.
type durationRow struct {
	Bucket    time.Time
	Source    string
	Priority  string
	AccountID string
	AgentID   string
	Metric    string
	Bin       int
	Count     int64
}

func (durationRow) TableName() string { return "analytics_hourly_durations" }

// Duration metric names in analytics_hourly_durations.
const (
	metricFirstResponse   = "first_response"
	metricFirstResolution = "first_resolution"
	metricFullResolution  = "full_resolution"
)

// histograms returns pointers to the row's histograms by metric name.
func (r *Row) histograms() map[string]*[]int64 {
	return map[string]*[]int64{
		metricFirstResponse:   &r.FirstResponseHist,
		metricFirstResolution: &r.FirstResolutionHist,
		metricFullResolution:  &r.FullResolutionHist,
	}
}

func durationRows(rows []Row) []durationRow {
	var out []durationRow
	for i := range rows {
		r := &rows[i]
		for metric, h := range r.histograms() {
			for bin, n := range *h {
				if n > 0 {
					out = append(out, durationRow{r.Bucket, r.Source, r.Priority, r.AccountID, r.AgentID, metric, bin, n})
				}
			}
		}
	}
	return out
}

// RecomputeRange rewrites every hour in [from, to), which must lie on UTC
// hour boundaries, from the ticket tables.
func (r *Rollup) RecomputeRange(ctx context.Context, from, to time.Time) error {
	return r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", rollupLock).Error; err != nil {
			return fmt.Errorf("lock rollup: %w", err)
		}
		// The facts are read under the lock, so a writer that read older
		// facts can never replace the rows of one that read newer ones.
		rows, err := computeRows(ctx, tx, from, to, Filter{})
		if err != nil {
			return err
		}
		for _, table := range []string{"analytics_hourly", "analytics_hourly_durations"} {
			if err := tx.Exec("DELETE FROM "+table+" WHERE bucket >= ? AND bucket < ?", from, to).Error; err != nil {
				return fmt.Errorf("delete rows of %s: %w", table, err)
			}
		}
		if len(rows) > 0 {
			if err := tx.CreateInBatches(rows, 1000).Error; err != nil {
				return fmt.Errorf("insert rollup rows: %w", err)
			}
		}
		if bins := durationRows(rows); len(bins) > 0 {
			if err := tx.CreateInBatches(bins, 1000).Error; err != nil {
				return fmt.Errorf("insert rollup durations: %w", err)
			}
		}
		if err := tx.Exec("UPDATE analytics_state SET updated_at = ? WHERE id = 1", r.nowFunc()).Error; err != nil {
			return fmt.Errorf("update rollup state: %w", err)
		}
		return nil
	})
}

// Reconcile recomputes the hours from ReconcileWindow ago to the end of
// the current hour, repairing rows that drifted from the ticket tables.
func (r *Rollup) Reconcile(ctx context.Context) error {
	now := r.nowFunc().UTC()
	to := now.Truncate(time.Hour).Add(time.Hour)
	from := now.Add(-r.ReconcileWindow).Truncate(time.Hour)
	return r.RecomputeRange(ctx, from, to)
}

// refreshOverlap is how far Refresh looks back before its watermark. A
// transaction that commits after a later one can carry an older
// updated_at, and this margin catches it.
// NOTE: a write that commits more than this margin after its updated_at is
// caught only by Reconcile, and only for hours within its window.
const refreshOverlap = 5 * time.Second

// Refresh recomputes the hours touched by tickets whose row or SLA state
// changed since the watermark, and advances the watermark. SLA rows count
// because the SLA engine rewrites them without touching the ticket, as when
// a policy changes or the sweep marks a breach. It pages through the changes
// by (updated_at, id), so any number of changes with one timestamp is read
// once, and returns the number of hours it recomputed.
func (r *Rollup) Refresh(ctx context.Context) (int, error) {
	db := r.db.WithContext(ctx)
	var state struct{ TicketWatermark time.Time }
	if err := db.Raw("SELECT ticket_watermark FROM analytics_state WHERE id = 1").Scan(&state).Error; err != nil {
		return 0, fmt.Errorf("read rollup state: %w", err)
	}
	watermark := state.TicketWatermark
	afterAt, afterID := watermark.Add(-refreshOverlap), ""
	recomputed := 0
	for {
		var changed []struct {
			ID        string
			UpdatedAt time.Time
		}
		err := db.Raw(`
SELECT id, updated_at FROM (
	SELECT id, updated_at FROM tickets
	UNION ALL SELECT ticket_id, updated_at FROM ticket_sla
) c WHERE (updated_at, id) > (?, ?) ORDER BY updated_at, id LIMIT ?`,
			afterAt, afterID, r.RefreshBatch).Scan(&changed).Error
		if err != nil {
			return recomputed, fmt.Errorf("list changed tickets: %w", err)
		}
		if len(changed) == 0 {
			return recomputed, nil
		}
		ids := make([]string, len(changed))
		for i, c := range changed {
			ids[i] = c.ID
		}
		n, err := r.recomputeTicketHours(ctx, ids)
		recomputed += n
		if err != nil {
			return recomputed, err
		}

		last := changed[len(changed)-1]
		if last.UpdatedAt.After(watermark) {
			if err := db.Exec("UPDATE analytics_state SET ticket_watermark = ? WHERE id = 1", last.UpdatedAt).Error; err != nil {
				return recomputed, fmt.Errorf("advance rollup watermark: %w", err)
			}
			watermark = last.UpdatedAt
		}
		if len(changed) < r.RefreshBatch {
			return recomputed, nil
		}
		afterAt, afterID = last.UpdatedAt, last.ID
	}
}

// recomputeTicketHours recomputes every hour in which one of the tickets
// ids has a fact, and returns how many hours it recomputed.
func (r *Rollup) recomputeTicketHours(ctx context.Context, ids []string) (int, error) {
	var hours []time.Time
	err := r.db.WithContext(ctx).Raw(`
SELECT DISTINCT date_trunc('hour', x, 'UTC') FROM (
	SELECT created_at AS x FROM tickets WHERE id IN @ids
	UNION ALL SELECT created_at FROM ticket_changes WHERE ticket_id IN @ids
	UNION ALL SELECT created_at FROM messages WHERE ticket_id IN @ids
	UNION ALL SELECT achieved_at FROM ticket_sla WHERE ticket_id IN @ids AND achieved_at IS NOT NULL
	UNION ALL SELECT breached_at FROM ticket_sla WHERE ticket_id IN @ids AND breached_at IS NOT NULL
) h ORDER BY 1`, map[string]any{"ids": ids}).Scan(&hours).Error
	if err != nil {
		return 0, fmt.Errorf("list touched hours: %w", err)
	}
	for i, h := range hours {
		if err := r.RecomputeRange(ctx, h, h.Add(time.Hour)); err != nil {
			return i, err
		}
	}
	return len(hours), nil
}
