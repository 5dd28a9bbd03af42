package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
	"github.com/outposthq/outpost/sla"
)

// CreatePolicyInput is the request of create-sla-policy.
type CreatePolicyInput struct {
	Body struct {
		Name              string            `json:"name" minLength:"1" maxLength:"200" example:"Enterprise"`
		IsDefault         bool              `json:"isDefault,omitempty" doc:"Make this the default policy; the previous default stops being the default."`
		Tier              string            `json:"tier,omitempty" maxLength:"100" example:"enterprise" doc:"Account tier the policy applies to. One policy per tier."`
		AccountIDs        []string          `json:"accountIds,omitempty" maxItems:"1000" doc:"Accounts the policy applies to, whatever their tier. An account can be named by one policy only."`
		BusinessHoursID   string            `json:"businessHoursId,omitempty" doc:"Business-hours schedule for targets whose clock is business."`
		WarnBeforeMinutes *int              `json:"warnBeforeMinutes,omitempty" minimum:"1" maximum:"525600" doc:"Emit ticket.sla_warning this many minutes before a due time, counted in the target's clock. A target no longer than this gets no warning."`
		FirstResponse     models.SLATargets `json:"firstResponse"`
		Resolution        models.SLATargets `json:"resolution"`
	}
}

// UpdatePolicyInput is the request of update-sla-policy, a JSON merge patch.
type UpdatePolicyInput struct {
	ID   string `path:"id" doc:"SLA policy ID."`
	Body struct {
		Name              Optional[string]            `json:"name,omitempty" minLength:"1" maxLength:"200"`
		IsDefault         Optional[bool]              `json:"isDefault,omitempty" doc:"true makes this the default policy. To stop a policy being the default, make another one the default."`
		Tier              Optional[string]            `json:"tier,omitempty" maxLength:"100"`
		AccountIDs        Optional[[]string]          `json:"accountIds,omitempty" maxItems:"1000"`
		BusinessHoursID   Nullable[string]            `json:"businessHoursId,omitempty" nullable:"true" doc:"Schedule for business-time targets, or null to clear."`
		WarnBeforeMinutes Nullable[int]               `json:"warnBeforeMinutes,omitempty" nullable:"true" minimum:"1" maximum:"525600" doc:"Warning lead in minutes, or null for no warning."`
		FirstResponse     Optional[models.SLATargets] `json:"firstResponse,omitempty"`
		Resolution        Optional[models.SLATargets] `json:"resolution,omitempty"`
	}
}

// ListPoliciesInput is the request of list-sla-policies.
type ListPoliciesInput struct {
	ListParams
	Sort string `query:"sort" enum:"createdAt,-createdAt,updatedAt,-updatedAt" default:"createdAt" doc:"Order; a leading - sorts descending."`
}

// CreateScheduleInput is the request of create-business-hours.
type CreateScheduleInput struct {
	Body struct {
		Name     string                `json:"name" minLength:"1" maxLength:"200" example:"Berlin office"`
		TimeZone string                `json:"timeZone" maxLength:"100" example:"Europe/Berlin" doc:"IANA time zone in which hours and holidays are read."`
		Hours    []models.OpeningHours `json:"hours" maxItems:"70" doc:"Weekly opening hours; at least one interval, none overlapping."`
		Holidays []models.Holiday      `json:"holidays,omitempty" maxItems:"1000" doc:"Local dates on which the schedule is closed all day."`
	}
}

// UpdateScheduleInput is the request of update-business-hours, a JSON merge
// patch. hours and holidays replace the whole list.
type UpdateScheduleInput struct {
	ID   string `path:"id" doc:"Business-hours schedule ID."`
	Body struct {
		Name     Optional[string]                `json:"name,omitempty" minLength:"1" maxLength:"200"`
		TimeZone Optional[string]                `json:"timeZone,omitempty" maxLength:"100"`
		Hours    Optional[[]models.OpeningHours] `json:"hours,omitempty" maxItems:"70"`
		Holidays Optional[[]models.Holiday]      `json:"holidays,omitempty" maxItems:"1000"`
	}
}

// ListSchedulesInput is the request of list-business-hours.
type ListSchedulesInput struct {
	ListParams
	Sort string `query:"sort" enum:"createdAt,-createdAt,updatedAt,-updatedAt" default:"createdAt" doc:"Order; a leading - sorts descending."`
}

func registerSLA(api huma.API, h *handlers) {
	tags := []string{"SLA"}
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-sla-policy",
		Method:      http.MethodPost,
		Path:        "/api/sla-policies",
		Summary:     "Create an SLA policy",
		Description: "A ticket gets the policy that names its account, else the policy of its account's tier, " +
			"else the default. Unfinished tickets whose policy changes are recomputed from their start.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusConflict},
	}), h.createPolicy)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-sla-policies",
		Method:      http.MethodGet,
		Path:        "/api/sla-policies",
		Summary:     "List SLA policies",
		Tags:        tags,
	}), h.listPolicies)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-sla-policy",
		Method:      http.MethodGet,
		Path:        "/api/sla-policies/{id}",
		Summary:     "Get an SLA policy",
		Tags:        tags,
		Errors:      []int{http.StatusNotFound},
	}), h.getPolicy)

	huma.Register(api, secured(huma.Operation{
		OperationID: "update-sla-policy",
		Method:      http.MethodPatch,
		Path:        "/api/sla-policies/{id}",
		Summary:     "Update an SLA policy",
		Description: "Applies a JSON merge patch. The unfinished tickets on the policy, and those of the " +
			"accounts and tiers it names, are recomputed from their start.",
		Tags:   tags,
		Errors: []int{http.StatusNotFound, http.StatusConflict},
	}), h.updatePolicy)

	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-sla-policy",
		Method:      http.MethodDelete,
		Path:        "/api/sla-policies/{id}",
		Summary:     "Delete an SLA policy",
		Description: "Moves the policy's unfinished tickets to the policy that now applies to them, with due times " +
			"recomputed from each ticket's start. Breaches already recorded stay. The default policy " +
			"cannot be deleted (409); make another policy the default first.",
		Tags:          tags,
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}), h.deletePolicy)

	huma.Register(api, secured(huma.Operation{
		OperationID:   "create-business-hours",
		Method:        http.MethodPost,
		Path:          "/api/business-hours",
		Summary:       "Create a business-hours schedule",
		Description:   "Weekly opening hours in an IANA time zone, with holidays. SLA targets with clock business count only these hours.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}), h.createSchedule)

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-business-hours",
		Method:      http.MethodGet,
		Path:        "/api/business-hours",
		Summary:     "List business-hours schedules",
		Tags:        tags,
	}), h.listSchedules)

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-business-hours",
		Method:      http.MethodGet,
		Path:        "/api/business-hours/{id}",
		Summary:     "Get a business-hours schedule",
		Tags:        tags,
		Errors:      []int{http.StatusNotFound},
	}), h.getSchedule)

	huma.Register(api, secured(huma.Operation{
		OperationID: "update-business-hours",
		Method:      http.MethodPatch,
		Path:        "/api/business-hours/{id}",
		Summary:     "Update a business-hours schedule",
		Description: "Applies a JSON merge patch. Unfinished tickets whose targets count in the schedule are recomputed from their start.",
		Tags:        tags,
		Errors:      []int{http.StatusNotFound},
	}), h.updateSchedule)

	huma.Register(api, secured(huma.Operation{
		OperationID:   "delete-business-hours",
		Method:        http.MethodDelete,
		Path:          "/api/business-hours/{id}",
		Summary:       "Delete a business-hours schedule",
		Description:   "A schedule that an SLA policy uses cannot be deleted (409).",
		Tags:          tags,
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}), h.deleteSchedule)
}

func (h *handlers) createPolicy(ctx context.Context, in *CreatePolicyInput) (*BodyOutput[models.SLAPolicy], error) {
	b := in.Body
	p, err := h.deps.SLA.CreatePolicy(ctx, sla.NewPolicy{
		Name:              b.Name,
		IsDefault:         b.IsDefault,
		Tier:              b.Tier,
		AccountIDs:        b.AccountIDs,
		BusinessHoursID:   b.BusinessHoursID,
		WarnBeforeMinutes: b.WarnBeforeMinutes,
		FirstResponse:     b.FirstResponse,
		Resolution:        b.Resolution,
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.SLAPolicy]{Body: p}, nil
}

func (h *handlers) listPolicies(ctx context.Context, in *ListPoliciesInput) (*PageOutput[models.SLAPolicy], error) {
	rows, next, err := h.deps.SLA.ListPolicies(ctx, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

func (h *handlers) getPolicy(ctx context.Context, in *IDInput) (*BodyOutput[models.SLAPolicy], error) {
	p, err := h.deps.SLA.GetPolicy(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.SLAPolicy]{Body: p}, nil
}

func (h *handlers) updatePolicy(ctx context.Context, in *UpdatePolicyInput) (*BodyOutput[models.SLAPolicy], error) {
	b := in.Body
	p, err := h.deps.SLA.UpdatePolicy(ctx, in.ID, sla.PolicyPatch{
		Name:              b.Name.Field(),
		IsDefault:         b.IsDefault.Field(),
		Tier:              b.Tier.Field(),
		AccountIDs:        b.AccountIDs.Field(),
		BusinessHoursID:   b.BusinessHoursID.Field(),
		WarnBeforeMinutes: b.WarnBeforeMinutes.Field(),
		FirstResponse:     b.FirstResponse.Field(),
		Resolution:        b.Resolution.Field(),
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.SLAPolicy]{Body: p}, nil
}

func (h *handlers) deletePolicy(ctx context.Context, in *IDInput) (*NoContentOutput, error) {
	if err := h.deps.SLA.DeletePolicy(ctx, in.ID); err != nil {
		return nil, h.problem(ctx, err)
	}
	return &NoContentOutput{}, nil
}

func (h *handlers) createSchedule(ctx context.Context, in *CreateScheduleInput) (*BodyOutput[models.BusinessHours], error) {
	b := in.Body
	bh, err := h.deps.SLA.CreateSchedule(ctx, sla.NewSchedule{
		Name: b.Name, TimeZone: b.TimeZone, Hours: b.Hours, Holidays: b.Holidays,
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.BusinessHours]{Body: bh}, nil
}

func (h *handlers) listSchedules(ctx context.Context, in *ListSchedulesInput) (*PageOutput[models.BusinessHours], error) {
	rows, next, err := h.deps.SLA.ListSchedules(ctx, paging.Params{Limit: in.Limit, Cursor: in.Cursor, Sort: in.Sort})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return newPage(rows, next), nil
}

func (h *handlers) getSchedule(ctx context.Context, in *IDInput) (*BodyOutput[models.BusinessHours], error) {
	bh, err := h.deps.SLA.GetSchedule(ctx, in.ID)
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.BusinessHours]{Body: bh}, nil
}

func (h *handlers) updateSchedule(ctx context.Context, in *UpdateScheduleInput) (*BodyOutput[models.BusinessHours], error) {
	b := in.Body
	bh, err := h.deps.SLA.UpdateSchedule(ctx, in.ID, sla.SchedulePatch{
		Name:     b.Name.Field(),
		TimeZone: b.TimeZone.Field(),
		Hours:    b.Hours.Field(),
		Holidays: b.Holidays.Field(),
	})
	if err != nil {
		return nil, h.problem(ctx, err)
	}
	return &BodyOutput[models.BusinessHours]{Body: bh}, nil
}

func (h *handlers) deleteSchedule(ctx context.Context, in *IDInput) (*NoContentOutput, error) {
	if err := h.deps.SLA.DeleteSchedule(ctx, in.ID); err != nil {
		return nil, h.problem(ctx, err)
	}
	return &NoContentOutput{}, nil
}
