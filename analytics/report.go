package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"time"

	"gorm.io/gorm"
)

// Filter narrows a report to tickets of the listed sources and priorities,
// one account and one agent. Empty fields match everything.
type Filter struct {
	Sources    []string
	Priorities []string
	AccountID  string
	AgentID    string
}

// sql returns a WHERE clause over columns source, priority, account_id and
// agentColumn, with its named arguments.
func (f Filter) sql(agentColumn string) (string, map[string]any) {
	if agentColumn == "" {
		agentColumn = "agent_id"
	}
	where := "WHERE true"
	args := map[string]any{}
	if len(f.Sources) > 0 {
		where += " AND source IN @sources"
		args["sources"] = f.Sources
	}
	if len(f.Priorities) > 0 {
		where += " AND priority IN @priorities"
		args["priorities"] = f.Priorities
	}
	if f.AccountID != "" {
		where += " AND account_id = @account"
		args["account"] = f.AccountID
	}
	if f.AgentID != "" {
		where += " AND " + agentColumn + " = @agent"
		args["agent"] = f.AgentID
	}
	return where, args
}

// Reports computes the analytics reports from the rollup, or from the
// ticket tables when Direct is set.
type Reports struct {
	db *gorm.DB
	// Direct computes every report from the ticket tables instead of the
	// rollup. The benchmark uses it as the baseline.
	Direct bool
}

// NewReports returns the reports over db.
func NewReports(db *gorm.DB) *Reports {
	return &Reports{db: db}
}

// rows returns the rollup rows of [from, to) that match f. From the rollup
// they come summed per distinct value of groupBy, a list of rollup columns
// ("" sums everything), and the other dimension fields are empty; read
// directly they come per hour and dimension. Reports aggregate further in
// Go, so both forms give the same answer.
func (r *Reports) rows(ctx context.Context, from, to time.Time, f Filter, groupBy string) ([]Row, error) {
	if r.Direct {
		return computeRows(ctx, r.db, from, to, f)
	}
	where, args := f.sql("")
	args["from"] = from
	args["to"] = to
	cols, group := "", ""
	if groupBy != "" {
		cols = groupBy + ","
		group = " GROUP BY " + groupBy
	}
	var rows []Row
	err := r.db.WithContext(ctx).Raw(`SELECT `+cols+`
		coalesce(sum(created), 0)::int AS created, coalesce(sum(resolved), 0)::int AS resolved,
		coalesce(sum(reopened), 0)::int AS reopened, coalesce(sum(messages_sent), 0)::int AS messages_sent,
		coalesce(sum(frt_achieved), 0)::int AS frt_achieved, coalesce(sum(frt_breached), 0)::int AS frt_breached,
		coalesce(sum(res_achieved), 0)::int AS res_achieved, coalesce(sum(res_breached), 0)::int AS res_breached
		FROM analytics_hourly `+where+` AND bucket >= @from AND bucket < @to`+group, args).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read rollup: %w", err)
	}
	var bins []struct {
		Row
		Metric string
		Bin    int
		Count  int64
	}
	err = r.db.WithContext(ctx).Raw(`SELECT `+cols+` metric, bin, sum(count) AS count
		FROM analytics_hourly_durations `+where+` AND bucket >= @from AND bucket < @to
		GROUP BY `+cols+` metric, bin`, args).Scan(&bins).Error
	if err != nil {
		return nil, fmt.Errorf("read rollup durations: %w", err)
	}

	// Each group has at most one row, so the bins join it by its group
	// values; a group with durations but no counts gets a row of its own.
	index := map[[4]string]int{}
	for i, row := range rows {
		index[groupKey(row)] = i
	}
	for _, b := range bins {
		i, ok := index[groupKey(b.Row)]
		if !ok {
			rows = append(rows, Row{Bucket: b.Bucket, Source: b.Source, Priority: b.Priority, AgentID: b.AgentID})
			i = len(rows) - 1
			index[groupKey(b.Row)] = i
		}
		h := rows[i].histograms()[b.Metric]
		*h = addBin(*h, b.Bin, int(b.Count))
	}
	return rows, nil
}

func groupKey(r Row) [4]string {
	return [4]string{r.Bucket.UTC().String(), r.Source, r.Priority, r.AgentID}
}

// Freshness returns when a refresh or reconciliation last rewrote the
// rollup, and the time before which every ticket and SLA change is in it:
// the refresh watermark less its overlap. Either is the zero time before
// the first run.
func (r *Reports) Freshness(ctx context.Context) (updated, complete time.Time, err error) {
	var u sql.NullTime
	var w time.Time
	err = r.db.WithContext(ctx).Raw("SELECT updated_at, ticket_watermark FROM analytics_state WHERE id = 1").Row().Scan(&u, &w)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("read rollup state: %w", err)
	}
	if w.Year() > 1970 {
		complete = w.Add(-refreshOverlap).UTC()
	}
	return u.Time.UTC(), complete, nil
}

// Durations is a duration distribution estimated from a histogram.
type Durations struct {
	Count int `json:"count" doc:"Number of durations measured."`
	// Median and P90 are nil when Count is 0.
	MedianSeconds *float64 `json:"medianSeconds" doc:"Median in seconds, or null without data."`
	P90Seconds    *float64 `json:"p90Seconds" doc:"90th percentile in seconds, or null without data."`
}

type histogram []int64

func (h *histogram) add(src []int64) {
	if len(src) == 0 {
		return
	}
	if len(*h) == 0 {
		*h = make(histogram, Bins)
	}
	for i, n := range src {
		(*h)[i] += n
	}
}

// durations returns the nearest-rank median and 90th percentile. Each is
// the geometric middle of its bin, within 2^(1/8)-1 (about 9.1%) of the
// true value, or within 0.5 s for values under a second.
func (h histogram) durations() Durations {
	var total int64
	for _, n := range h {
		total += n
	}
	d := Durations{Count: int(total)}
	if total == 0 {
		return d
	}
	d.MedianSeconds = ptr(h.quantile(0.5, total))
	d.P90Seconds = ptr(h.quantile(0.9, total))
	return d
}

func (h histogram) quantile(q float64, total int64) float64 {
	rank := int64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen int64
	for k, n := range h {
		seen += n
		if seen >= rank {
			if k == 0 {
				return 0.5
			}
			// NOTE: the last bin has no upper bound, so a value in it
			// is reported as if the bin were as wide as the others.
			return round3(binLower(k) * math.Pow(2, 1.0/8))
		}
	}
	return 0
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func ptr[T any](v T) *T { return &v }

// Compliance is a count of SLA targets met and missed.
type Compliance struct {
	Achieved int `json:"achieved" doc:"Targets met, counted at the time they were met."`
	Breached int `json:"breached" doc:"Targets missed, counted at the time of the breach."`
	// Percent is nil without outcomes.
	Percent *float64 `json:"percent" doc:"achieved / (achieved + breached) × 100, or null when both are 0."`
}

func (c *Compliance) finish() {
	if n := c.Achieved + c.Breached; n > 0 {
		c.Percent = ptr(round3(100 * float64(c.Achieved) / float64(n)))
	}
}

// Backlog is the number of unfinished tickets of one status and priority.
type Backlog struct {
	Status   string `json:"status" enum:"open,pending"`
	Priority string `json:"priority" enum:"low,medium,high,urgent"`
	Count    int    `json:"count"`
}

// Overview is the overview report.
type Overview struct {
	Backlog         []Backlog  `json:"backlog" doc:"Open and pending tickets now, by status and priority, whatever the range."`
	Created         int        `json:"created" doc:"Tickets created in the range."`
	Resolved        int        `json:"resolved" doc:"Resolve events in the range; a ticket resolved twice counts twice."`
	Reopened        int        `json:"reopened" doc:"Reopen events in the range: resolved or closed back to open or pending."`
	FirstResponse   Durations  `json:"firstResponse" doc:"Ticket creation to first public agent reply, for replies in the range."`
	FirstResolution Durations  `json:"firstResolution" doc:"Ticket creation to its first resolve event, for first resolve events in the range."`
	FullResolution  Durations  `json:"fullResolution" doc:"Ticket creation to its current resolvedAt, for resolved or closed tickets whose resolvedAt is in the range."`
	SLA             Compliance `json:"sla" doc:"Both SLA targets together."`
}

// Overview computes the overview of [from, to).
func (r *Reports) Overview(ctx context.Context, from, to time.Time, f Filter) (Overview, error) {
	rows, err := r.rows(ctx, from, to, f, "")
	if err != nil {
		return Overview{}, err
	}
	var o Overview
	var frt, first, full histogram
	for _, row := range rows {
		o.Created += row.Created
		o.Resolved += row.Resolved
		o.Reopened += row.Reopened
		frt.add(row.FirstResponseHist)
		first.add(row.FirstResolutionHist)
		full.add(row.FullResolutionHist)
		o.SLA.Achieved += row.FRTAchieved + row.ResAchieved
		o.SLA.Breached += row.FRTBreached + row.ResBreached
	}
	o.FirstResponse = frt.durations()
	o.FirstResolution = first.durations()
	o.FullResolution = full.durations()
	o.SLA.finish()
	o.Backlog, err = r.backlog(ctx, f)
	return o, err
}

func (r *Reports) backlog(ctx context.Context, f Filter) ([]Backlog, error) {
	where, args := f.sql("coalesce(assignee_id, '')")
	args["unfinished"] = []string{"open", "pending"}
	out := []Backlog{}
	err := r.db.WithContext(ctx).Raw(`SELECT status, priority, count(*) AS count FROM tickets `+where+
		` AND status IN @unfinished GROUP BY 1, 2 ORDER BY 1, 2`, args).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("count backlog: %w", err)
	}
	return out, nil
}

// SLAReport is the SLA report.
type SLAReport struct {
	FirstResponse Compliance           `json:"firstResponse"`
	Resolution    Compliance           `json:"resolution"`
	ByPriority    []PriorityCompliance `json:"byPriority" doc:"Both targets per priority, in priority order low to urgent; priorities without outcomes are left out."`
	Previous      SLAPeriod            `json:"previous" doc:"The same figures for the period of the same length just before from."`
	Trend         map[string]*float64  `json:"trend" doc:"Compliance percent minus the previous period's, in percentage points, per target (firstResponse, resolution, overall); null when either side has no outcomes."`
	Overall       Compliance           `json:"overall"`
}

// PriorityCompliance is SLA compliance of one priority.
type PriorityCompliance struct {
	Priority      string     `json:"priority"`
	FirstResponse Compliance `json:"firstResponse"`
	Resolution    Compliance `json:"resolution"`
}

// SLAPeriod is the SLA compliance of a period.
type SLAPeriod struct {
	From          time.Time  `json:"from"`
	To            time.Time  `json:"to"`
	FirstResponse Compliance `json:"firstResponse"`
	Resolution    Compliance `json:"resolution"`
	Overall       Compliance `json:"overall"`
}

func (r *Reports) compliance(ctx context.Context, from, to time.Time, f Filter) (frt, res Compliance, byPriority map[string]*PriorityCompliance, err error) {
	rows, err := r.rows(ctx, from, to, f, "priority")
	if err != nil {
		return frt, res, nil, err
	}
	byPriority = map[string]*PriorityCompliance{}
	for _, row := range rows {
		frt.Achieved += row.FRTAchieved
		frt.Breached += row.FRTBreached
		res.Achieved += row.ResAchieved
		res.Breached += row.ResBreached
		if row.FRTAchieved+row.FRTBreached+row.ResAchieved+row.ResBreached == 0 {
			continue
		}
		p, ok := byPriority[row.Priority]
		if !ok {
			p = &PriorityCompliance{Priority: row.Priority}
			byPriority[row.Priority] = p
		}
		p.FirstResponse.Achieved += row.FRTAchieved
		p.FirstResponse.Breached += row.FRTBreached
		p.Resolution.Achieved += row.ResAchieved
		p.Resolution.Breached += row.ResBreached
	}
	frt.finish()
	res.finish()
	return frt, res, byPriority, nil
}

// SLA computes the SLA report of [from, to) and of the period of the same
// length before it.
func (r *Reports) SLA(ctx context.Context, from, to time.Time, f Filter) (SLAReport, error) {
	var out SLAReport
	frt, res, byPriority, err := r.compliance(ctx, from, to, f)
	if err != nil {
		return out, err
	}
	out.FirstResponse, out.Resolution = frt, res
	out.Overall = Compliance{Achieved: frt.Achieved + res.Achieved, Breached: frt.Breached + res.Breached}
	out.Overall.finish()
	out.ByPriority = []PriorityCompliance{}
	for _, p := range []string{"low", "medium", "high", "urgent"} {
		if pc, ok := byPriority[p]; ok {
			pc.FirstResponse.finish()
			pc.Resolution.finish()
			out.ByPriority = append(out.ByPriority, *pc)
		}
	}

	prevFrom := from.Add(-to.Sub(from))
	pfrt, pres, _, err := r.compliance(ctx, prevFrom, from, f)
	if err != nil {
		return out, err
	}
	out.Previous = SLAPeriod{From: prevFrom.UTC(), To: from.UTC(), FirstResponse: pfrt, Resolution: pres,
		Overall: Compliance{Achieved: pfrt.Achieved + pres.Achieved, Breached: pfrt.Breached + pres.Breached}}
	out.Previous.Overall.finish()
	out.Trend = map[string]*float64{
		"firstResponse": diff(out.FirstResponse.Percent, pfrt.Percent),
		"resolution":    diff(out.Resolution.Percent, pres.Percent),
		"overall":       diff(out.Overall.Percent, out.Previous.Overall.Percent),
	}
	return out, nil
}

func diff(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	return ptr(round3(*a - *b))
}

// VolumePoint is one bucket of the volume series.
type VolumePoint struct {
	Start    time.Time `json:"start" doc:"Bucket start in the requested zone; the first and last buckets are clipped to the range."`
	Group    string    `json:"group,omitempty" doc:"Source or priority, with groupBy."`
	Created  int       `json:"created"`
	Resolved int       `json:"resolved"`
}

// Volume returns created and resolved counts of [from, to) per interval
// ("hour", "day" or "week", weeks starting on Monday) in loc, grouped by
// groupBy ("", "source" or "priority"). Every bucket of the range appears,
// with zeros when empty. from and to must lie on UTC hour boundaries, and
// loc's offset must be a whole number of hours throughout the range.
func (r *Reports) Volume(ctx context.Context, from, to time.Time, loc *time.Location, interval, groupBy string, f Filter) ([]VolumePoint, error) {
	if groupBy != "" && groupBy != "source" && groupBy != "priority" {
		return nil, fmt.Errorf("group volume by %q: want source or priority", groupBy)
	}
	group := "bucket"
	if groupBy != "" {
		group += ", " + groupBy
	}
	rows, err := r.rows(ctx, from, to, f, group)
	if err != nil {
		return nil, err
	}
	type key struct {
		start time.Time
		group string
	}
	sums := map[key]*VolumePoint{}
	groups := map[string]bool{}
	for _, row := range rows {
		if row.Created == 0 && row.Resolved == 0 {
			continue
		}
		g := ""
		switch groupBy {
		case "source":
			g = row.Source
		case "priority":
			g = row.Priority
		}
		groups[g] = true
		k := key{bucketStart(row.Bucket, loc, interval, from), g}
		p, ok := sums[k]
		if !ok {
			p = &VolumePoint{Start: k.start, Group: g}
			sums[k] = p
		}
		p.Created += row.Created
		p.Resolved += row.Resolved
	}
	if groupBy == "" {
		groups = map[string]bool{"": true}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)

	out := []VolumePoint{}
	var last time.Time
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		start := bucketStart(h, loc, interval, from)
		if start.Equal(last) {
			continue
		}
		last = start
		for _, g := range names {
			if p, ok := sums[key{start, g}]; ok {
				out = append(out, *p)
			} else {
				out = append(out, VolumePoint{Start: start, Group: g})
			}
		}
	}
	return out, nil
}

// bucketStart returns the start, in loc, of the interval bucket that holds
// hour h, clipped to from.
func bucketStart(h time.Time, loc *time.Location, interval string, from time.Time) time.Time {
	t := h.In(loc)
	var start time.Time
	switch interval {
	case "day":
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	case "week":
		back := (int(t.Weekday()) + 6) % 7
		start = time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, loc)
	default:
		start = t
	}
	if start.Before(from) {
		start = from.In(loc)
	}
	return start
}

// WholeHourOffsets reports whether loc's UTC offset is a whole number of
// hours at every hour of [from, to), so that hour buckets map exactly onto
// its days and weeks.
func WholeHourOffsets(loc *time.Location, from, to time.Time) bool {
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		if _, off := h.In(loc).Zone(); off%3600 != 0 {
			return false
		}
	}
	return true
}

// AgentStats is one agent's row of the agents report.
type AgentStats struct {
	AgentID        string     `json:"agentId"`
	Assigned       int        `json:"assigned" doc:"Tickets created in the range and assigned to the agent now."`
	Resolved       int        `json:"resolved" doc:"Resolve events in the range of tickets assigned to the agent now."`
	FirstResponse  Durations  `json:"firstResponse" doc:"First-response times of the agent's tickets, for replies in the range."`
	FullResolution Durations  `json:"fullResolution" doc:"Full resolution times of the agent's tickets, for resolvedAt in the range."`
	SLA            Compliance `json:"sla" doc:"Both SLA targets of the agent's tickets together."`
	MessagesSent   int        `json:"messagesSent" doc:"Public replies the agent wrote in the range, on any ticket."`
}

// Agents computes the agents report of [from, to), one row per agent with
// any activity, ordered by agent ID.
func (r *Reports) Agents(ctx context.Context, from, to time.Time, f Filter) ([]AgentStats, error) {
	rows, err := r.rows(ctx, from, to, f, "agent_id")
	if err != nil {
		return nil, err
	}
	type acc struct {
		AgentStats
		frt, full histogram
	}
	byAgent := map[string]*acc{}
	for _, row := range rows {
		if row.AgentID == "" {
			continue
		}
		a, ok := byAgent[row.AgentID]
		if !ok {
			a = &acc{AgentStats: AgentStats{AgentID: row.AgentID}}
			byAgent[row.AgentID] = a
		}
		a.Assigned += row.Created
		a.Resolved += row.Resolved
		a.MessagesSent += row.MessagesSent
		a.frt.add(row.FirstResponseHist)
		a.full.add(row.FullResolutionHist)
		a.SLA.Achieved += row.FRTAchieved + row.ResAchieved
		a.SLA.Breached += row.FRTBreached + row.ResBreached
	}
	out := make([]AgentStats, 0, len(byAgent))
	for _, a := range byAgent {
		a.FirstResponse = a.frt.durations()
		a.FullResolution = a.full.durations()
		a.SLA.finish()
		out = append(out, a.AgentStats)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out, nil
}
