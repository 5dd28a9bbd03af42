package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/analytics"
	"github.com/outposthq/outpost/models"
)

// AnalyticsParams are the query parameters every analytics report takes.
type AnalyticsParams struct {
	From     time.Time         `query:"from" required:"true" doc:"Start of the range, inclusive (RFC 3339). Must be a whole UTC hour."`
	To       time.Time         `query:"to" required:"true" doc:"End of the range, exclusive (RFC 3339). Must be a whole UTC hour after from, at most 400 days later."`
	TZ       string            `query:"tz" default:"UTC" doc:"IANA time zone in which day and week buckets are cut."`
	Source   []models.Source   `query:"source" enum:"web,email,discord,slack,teams,github,api,phone,chat" doc:"Sources to include, comma-separated."`
	Priority []models.Priority `query:"priority" enum:"low,medium,high,urgent" doc:"Priorities to include, comma-separated."`
	Account  string            `query:"accountId" doc:"Only tickets of this account."`
	Agent    string            `query:"agentId" doc:"Only tickets assigned to this agent now, and replies this agent wrote."`
}

// maxAnalyticsRange bounds one report's range.
const maxAnalyticsRange = 400 * 24 * time.Hour

// parse validates the range and zone and returns the filter.
func (p AnalyticsParams) parse() (*time.Location, analytics.Filter, error) {
	var f analytics.Filter
	loc, err := time.LoadLocation(p.TZ)
	if err != nil || p.TZ == "" || p.TZ == "Local" {
		return nil, f, outpost.Invalid("query.tz", p.TZ, "unknown time zone; use an IANA name such as Europe/Berlin")
	}
	if !p.From.Equal(p.From.Truncate(time.Hour)) {
		return nil, f, outpost.Invalid("query.from", p.From, "must be a whole UTC hour, such as 2026-03-08T08:00:00Z")
	}
	if !p.To.Equal(p.To.Truncate(time.Hour)) {
		return nil, f, outpost.Invalid("query.to", p.To, "must be a whole UTC hour, such as 2026-03-09T08:00:00Z")
	}
	if !p.To.After(p.From) || p.To.Sub(p.From) > maxAnalyticsRange {
		return nil, f, outpost.Invalid("query.to", p.To, "must be after from and at most 400 days later")
	}
	for _, s := range p.Source {
		f.Sources = append(f.Sources, string(s))
	}
	for _, s := range p.Priority {
		f.Priorities = append(f.Priorities, string(s))
	}
	f.AccountID = p.Account
	f.AgentID = p.Agent
	return loc, f, nil
}

// AnalyticsMeta is the range a report covers and the time its rollup was
// last rewritten.
type AnalyticsMeta struct {
	From            time.Time  `json:"from"`
	To              time.Time  `json:"to"`
	TZ              string     `json:"tz"`
	RollupUpdatedAt *time.Time `json:"rollupUpdatedAt" doc:"When the rollup was last rewritten, or null before its first run."`
	CompleteBefore  *time.Time `json:"completeBefore" doc:"Every ticket and SLA change made before this time is in the rollup, or null before its first refresh. A write that committed more than 5 seconds after its timestamp may be missing until the next reconciliation."`
}

// OverviewOutput is the response of analytics-overview.
type OverviewOutput struct {
	Body struct {
		AnalyticsMeta
		analytics.Overview
	}
}

// SLAReportOutput is the response of analytics-sla.
type SLAReportOutput struct {
	Body struct {
		AnalyticsMeta
		analytics.SLAReport
	}
}

// VolumeInput is the request of analytics-volume.
type VolumeInput struct {
	AnalyticsParams
	Interval string `query:"interval" enum:"hour,day,week" default:"day" doc:"Bucket size. Days and weeks (Monday to Sunday) are cut at midnight in tz."`
	GroupBy  string `query:"groupBy" enum:"source,priority" doc:"Split each bucket by source or priority."`
}

// VolumeOutput is the response of analytics-volume.
type VolumeOutput struct {
	Body struct {
		AnalyticsMeta
		Interval string                  `json:"interval"`
		Data     []analytics.VolumePoint `json:"data"`
	}
}

// AgentsOutput is the response of analytics-agents.
type AgentsOutput struct {
	Body struct {
		AnalyticsMeta
		Data []analytics.AgentStats `json:"data"`
	}
}

const analyticsDefinitions = "\n\nDefinitions, shared by every analytics report:\n\n" +
	"- The range is `[from, to)`: a fact at exactly `from` counts, one at exactly `to` does not. " +
	"`from` and `to` must be whole UTC hours, because the rollup keeps one bucket per UTC hour.\n" +
	"- A fact is counted at the instant it happened: a ticket at its creation, a resolution at its " +
	"resolve event, a reply at the reply. Facts are attributed to the ticket's current source, priority, " +
	"account and assignee, so changing a ticket's priority moves its history to the new priority.\n" +
	"- A resolve event is a status change to `resolved`, or to `closed` from anything but `resolved`. " +
	"A ticket resolved, reopened and resolved again counts twice in `resolved`, and once in the backlog " +
	"while it is open.\n" +
	"- First response time runs from creation to the first public reply by a human agent. First " +
	"resolution time runs to the first resolve event; full resolution time runs to the ticket's current " +
	"`resolvedAt`, for tickets now resolved or closed.\n" +
	"- Medians and 90th percentiles are nearest-rank values read from histograms with fixed bins: " +
	"under 1 s, then one bin per factor 2^(1/4) up to about 327 days. Each value is the geometric middle " +
	"of its bin, so it is within 9.1% of the exact value (0.5 s below one second).\n" +
	"- SLA compliance is achieved / (achieved + breached) × 100 from each ticket's SLA state, counted " +
	"at the time a target was met or breached. A target met late counts as breached.\n" +
	"- The counts of `volume` summed over its series equal the `created` and `resolved` of `overview` " +
	"for the same range and filters.\n" +
	"- The reports read the rollup, which lags ticket changes by up to `OUTPOST_ANALYTICS_REFRESH_INTERVAL` " +
	"(10 s by default); SLA breaches marked by the sweep show after the next reconciliation " +
	"(`OUTPOST_ANALYTICS_RECONCILE_INTERVAL`, 10 min). `rollupUpdatedAt` says when it was last rewritten, and `completeBefore` the time before which every change is in it."

func registerAnalytics(api huma.API, h *handlers) {
	tags := []string{"Analytics"}
	huma.Register(api, secured(huma.Operation{
		OperationID: "analytics-overview",
		Method:      http.MethodGet,
		Path:        "/api/analytics/overview",
		Summary:     "Get the support overview",
		Description: "The open backlog now by status and priority, and for the range: tickets created, " +
			"resolve and reopen events, median and 90th percentile first response, first resolution and " +
			"full resolution times, and SLA compliance." + analyticsDefinitions,
		Tags: tags,
	}), h.analyticsOverview)

	huma.Register(api, secured(huma.Operation{
		OperationID: "analytics-sla",
		Method:      http.MethodGet,
		Path:        "/api/analytics/sla",
		Summary:     "Get SLA compliance",
		Description: "Achieved and breached counts and compliance per target and per priority, and the " +
			"change against the period of the same length just before `from`." + analyticsDefinitions,
		Tags: tags,
	}), h.analyticsSLA)

	huma.Register(api, secured(huma.Operation{
		OperationID: "analytics-volume",
		Method:      http.MethodGet,
		Path:        "/api/analytics/volume",
		Summary:     "Get ticket volume over time",
		Description: "Tickets created and resolve events per hour, day or week. Days and weeks start at " +
			"midnight in `tz`, so a day on which daylight saving time starts or ends holds 23 or 25 hours. " +
			"Every bucket of the range is listed, empty ones with zeros; the first and last are clipped to " +
			"the range. A zone whose offset is not a whole number of hours during the range (such as " +
			"Asia/Kolkata, +05:30) is rejected with 422, because hour buckets cannot be split exactly at " +
			"its midnights." + analyticsDefinitions,
		Tags: tags,
	}), h.analyticsVolume)

	huma.Register(api, secured(huma.Operation{
		OperationID: "analytics-agents",
		Method:      http.MethodGet,
		Path:        "/api/analytics/agents",
		Summary:     "Get agent performance",
		Description: "Per agent: tickets created in the range and assigned to the agent now, their " +
			"resolve events, median first response and full resolution times, SLA compliance, and public " +
			"replies the agent wrote on any ticket." + analyticsDefinitions,
		Tags: tags,
	}), h.analyticsAgents)
}

func (h *handlers) analyticsMeta(ctx context.Context, p AnalyticsParams) (AnalyticsMeta, error) {
	m := AnalyticsMeta{From: p.From.UTC(), To: p.To.UTC(), TZ: p.TZ}
	updated, complete, err := h.deps.Analytics.Freshness(ctx)
	if err != nil {
		return m, err
	}
	if !updated.IsZero() {
		m.RollupUpdatedAt = &updated
	}
	if !complete.IsZero() {
		m.CompleteBefore = &complete
	}
	return m, nil
}

func (h *handlers) analyticsOverview(ctx context.Context, in *AnalyticsParams) (*OverviewOutput, error) {
	_, f, err := in.parse()
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	out := &OverviewOutput{}
	if out.Body.AnalyticsMeta, err = h.analyticsMeta(ctx, *in); err != nil {
		return nil, h.problem(ctx, err)
	}
	if out.Body.Overview, err = h.deps.Analytics.Overview(ctx, in.From, in.To, f); err != nil {
		return nil, h.problem(ctx, err)
	}
	return out, nil
}

func (h *handlers) analyticsSLA(ctx context.Context, in *AnalyticsParams) (*SLAReportOutput, error) {
	_, f, err := in.parse()
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	out := &SLAReportOutput{}
	if out.Body.AnalyticsMeta, err = h.analyticsMeta(ctx, *in); err != nil {
		return nil, h.problem(ctx, err)
	}
	if out.Body.SLAReport, err = h.deps.Analytics.SLA(ctx, in.From, in.To, f); err != nil {
		return nil, h.problem(ctx, err)
	}
	return out, nil
}

func (h *handlers) analyticsVolume(ctx context.Context, in *VolumeInput) (*VolumeOutput, error) {
	loc, f, err := in.parse()
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	if !analytics.WholeHourOffsets(loc, in.From, in.To) {
		return nil, h.problem(ctx, outpost.Invalid("query.tz", in.TZ,
			"the zone's UTC offset is not a whole number of hours during the range, so hourly buckets "+
				"cannot be cut at its midnights; use a zone with whole-hour offsets"))
	}
	out := &VolumeOutput{}
	if out.Body.AnalyticsMeta, err = h.analyticsMeta(ctx, in.AnalyticsParams); err != nil {
		return nil, h.problem(ctx, err)
	}
	out.Body.Interval = in.Interval
	out.Body.Data, err = h.deps.Analytics.Volume(ctx, in.From, in.To, loc, in.Interval, in.GroupBy, f)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return out, nil
}

func (h *handlers) analyticsAgents(ctx context.Context, in *AnalyticsParams) (*AgentsOutput, error) {
	_, f, err := in.parse()
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	out := &AgentsOutput{}
	if out.Body.AnalyticsMeta, err = h.analyticsMeta(ctx, *in); err != nil {
		return nil, h.problem(ctx, err)
	}
	if out.Body.Data, err = h.deps.Analytics.Agents(ctx, in.From, in.To, f); err != nil {
		return nil, h.problem(ctx, err)
	}
	return out, nil
}
