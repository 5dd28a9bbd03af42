package sla

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// maxTargetMinutes is the longest target a policy may set: one year.
const maxTargetMinutes = 525600

// NewPolicy is the input of CreatePolicy.
type NewPolicy struct {
	Name              string
	IsDefault         bool
	Tier              string
	AccountIDs        []string
	BusinessHoursID   string // empty for none
	WarnBeforeMinutes *int
	FirstResponse     models.SLATargets
	Resolution        models.SLATargets
}

// PolicyPatch is the input of UpdatePolicy. Unset fields keep their value;
// BusinessHoursID and WarnBeforeMinutes set to null clear it.
type PolicyPatch struct {
	Name              outpost.Field[string]
	IsDefault         outpost.Field[bool]
	Tier              outpost.Field[string]
	AccountIDs        outpost.Field[[]string]
	BusinessHoursID   outpost.Field[string]
	WarnBeforeMinutes outpost.Field[int]
	FirstResponse     outpost.Field[models.SLATargets]
	Resolution        outpost.Field[models.SLATargets]
}

var policySortKeys = map[string]string{"createdAt": "created_at", "updatedAt": "updated_at"}

// CreatePolicy stores a new policy and recomputes the unfinished tickets
// whose policy it may change: those of the accounts and tier it names, and,
// when it becomes the default, those on the previous default.
func (e *Engine) CreatePolicy(ctx context.Context, in NewPolicy) (models.SLAPolicy, error) {
	now := e.now()
	p := models.SLAPolicy{
		ID:                models.NewID(models.PrefixPolicy),
		Name:              in.Name,
		IsDefault:         in.IsDefault,
		Tier:              strings.TrimSpace(in.Tier),
		AccountIDs:        models.UniqueTrimmed(in.AccountIDs),
		WarnBeforeMinutes: in.WarnBeforeMinutes,
		FirstResponse:     in.FirstResponse,
		Resolution:        in.Resolution,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
	if in.BusinessHoursID != "" {
		p.BusinessHoursID = &in.BusinessHoursID
	}
	err := e.commit(ctx, func(tx *gorm.DB) (outcome, error) {
		if err := lockPolicies(tx); err != nil {
			return outcome{}, err
		}
		if err := validatePolicy(tx, p); err != nil {
			return outcome{}, err
		}
		var previousDefault []string
		if p.IsDefault {
			var err error
			if previousDefault, err = clearDefault(tx); err != nil {
				return outcome{}, err
			}
		}
		if err := tx.Create(&p).Error; err != nil {
			return outcome{}, fmt.Errorf("insert SLA policy: %w", err)
		}
		if err := audit.RecordChange(ctx, tx, p.ID); err != nil {
			return outcome{}, err
		}
		ids, err := affectedTickets(tx, previousDefault, p.AccountIDs, tiers(p.Tier))
		if err != nil {
			return outcome{}, err
		}
		return e.recomputeAll(tx, ids, now)
	})
	return p, err
}

// GetPolicy returns policy id. Deleted policies are not found.
func (e *Engine) GetPolicy(ctx context.Context, id string) (models.SLAPolicy, error) {
	var p models.SLAPolicy
	err := e.db.WithContext(ctx).Take(&p, "id = ? AND deleted_at IS NULL", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, outpost.NotFound("SLA policy", id)
	}
	if err != nil {
		return p, fmt.Errorf("load SLA policy: %w", err)
	}
	return p, nil
}

// ListPolicies returns one page of policies and the next page's cursor.
func (e *Engine) ListPolicies(ctx context.Context, p paging.Params) ([]models.SLAPolicy, *string, error) {
	q, err := paging.New(p, policySortKeys, "createdAt")
	if err != nil {
		return nil, nil, err
	}
	db := e.db.WithContext(ctx).Model(&models.SLAPolicy{}).Where("deleted_at IS NULL")
	var rows []models.SLAPolicy
	if err := q.Apply(db, "sla_policies").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list SLA policies: %w", err)
	}
	page, next := paging.Page(q, rows, func(p models.SLAPolicy) (time.Time, string) {
		if q.SortColumn() == "updatedAt" {
			return p.UpdatedAt, p.ID
		}
		return p.CreatedAt, p.ID
	})
	return page, next, nil
}

// UpdatePolicy applies patch to policy id and recomputes the unfinished
// tickets whose policy or targets it may change. These are the tickets on
// the policy and those of the accounts and tiers it named before or names
// now. When it becomes the default, they include those on the previous one.
func (e *Engine) UpdatePolicy(ctx context.Context, id string, patch PolicyPatch) (models.SLAPolicy, error) {
	var p models.SLAPolicy
	err := e.commit(ctx, func(tx *gorm.DB) (outcome, error) {
		if err := lockPolicies(tx); err != nil {
			return outcome{}, err
		}
		if err := tx.Take(&p, "id = ? AND deleted_at IS NULL", id).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return outcome{}, outpost.NotFound("SLA policy", id)
			}
			return outcome{}, fmt.Errorf("load SLA policy: %w", err)
		}
		before := p
		if !applyPolicyPatch(&p, patch) {
			return outcome{}, nil
		}
		if before.IsDefault && !p.IsDefault {
			return outcome{}, outpost.Invalid("body.isDefault", false, "exactly one policy is the default; make another policy the default instead")
		}
		if err := validatePolicy(tx, p); err != nil {
			return outcome{}, err
		}
		var previousDefault []string
		if p.IsDefault && !before.IsDefault {
			var err error
			if previousDefault, err = clearDefault(tx); err != nil {
				return outcome{}, err
			}
		}
		p.UpdatedAt = e.now()
		if err := tx.Save(&p).Error; err != nil {
			return outcome{}, fmt.Errorf("save SLA policy: %w", err)
		}
		if err := audit.RecordChange(ctx, tx, p.ID); err != nil {
			return outcome{}, err
		}
		ids, err := affectedTickets(tx, append(previousDefault, p.ID),
			append(slices.Clone(before.AccountIDs), p.AccountIDs...), tiers(before.Tier, p.Tier))
		if err != nil {
			return outcome{}, err
		}
		return e.recomputeAll(tx, ids, p.UpdatedAt)
	})
	return p, err
}

// DeletePolicy deletes policy id and moves its unfinished tickets to the
// policy that now applies to them, with due times recomputed from the start
// of each ticket. The default policy cannot be deleted. The row stays,
// marked deleted, because finished tickets and emitted events refer to it.
func (e *Engine) DeletePolicy(ctx context.Context, id string) error {
	return e.commit(ctx, func(tx *gorm.DB) (outcome, error) {
		if err := lockPolicies(tx); err != nil {
			return outcome{}, err
		}
		var p models.SLAPolicy
		if err := tx.Take(&p, "id = ? AND deleted_at IS NULL", id).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return outcome{}, outpost.NotFound("SLA policy", id)
			}
			return outcome{}, fmt.Errorf("load SLA policy: %w", err)
		}
		if p.IsDefault {
			return outcome{}, &outpost.ConflictError{
				Field:   "path.id",
				Value:   id,
				Message: "the default policy cannot be deleted; make another policy the default first (PATCH it with isDefault true)",
			}
		}
		now := e.now()
		err := tx.Model(&p).Updates(map[string]any{"deleted_at": now, "updated_at": now}).Error
		if err != nil {
			return outcome{}, fmt.Errorf("delete SLA policy: %w", err)
		}
		if err := audit.RecordChange(ctx, tx, p.ID); err != nil {
			return outcome{}, err
		}
		ids, err := affectedTickets(tx, []string{p.ID}, nil, nil)
		if err != nil {
			return outcome{}, err
		}
		return e.recomputeAll(tx, ids, now)
	})
}

// commit runs fn in a transaction, then dispatches the events and arms the
// tasks of its outcome.
func (e *Engine) commit(ctx context.Context, fn func(tx *gorm.DB) (outcome, error)) error {
	var out outcome
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	e.dispatcher.Dispatch(ctx, out.events...)
	if arm := e.armer(out.timers); arm != nil {
		arm(ctx)
	}
	return nil
}

// lockPolicies serializes policy writes for the rest of tx, so that the
// checks for the single default and for accounts named twice see every
// committed policy.
func lockPolicies(tx *gorm.DB) error {
	if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext('outpost.sla_policies'))").Error; err != nil {
		return fmt.Errorf("lock SLA policies: %w", err)
	}
	return nil
}

// clearDefault removes the default flag from the current default policy and
// returns its ID.
func clearDefault(tx *gorm.DB) ([]string, error) {
	var ids []string
	err := tx.Model(&models.SLAPolicy{}).Where("is_default AND deleted_at IS NULL").Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("find default SLA policy: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if err := tx.Model(&models.SLAPolicy{}).Where("id IN ?", ids).Update("is_default", false).Error; err != nil {
		return nil, fmt.Errorf("clear default SLA policy: %w", err)
	}
	return ids, nil
}

// affectedTickets returns, sorted, the unfinished tickets that use one of
// policyIDs or belong to one of accountIDs or to an account of one of
// tiers.
func affectedTickets(tx *gorm.DB, policyIDs, accountIDs, tiers []string) ([]string, error) {
	var ids []string
	err := tx.Raw(`
		SELECT ticket_id FROM ticket_sla
		WHERE metric = ? AND achieved_at IS NULL AND policy_id IN ?
		UNION
		SELECT t.id FROM tickets t JOIN accounts a ON a.id = t.account_id
		WHERE t.status IN ? AND (a.id IN ? OR a.tier IN ?)
		ORDER BY 1`,
		models.MetricResolution, nonEmpty(policyIDs),
		[]models.Status{models.StatusOpen, models.StatusPending}, nonEmpty(accountIDs), nonEmpty(tiers)).
		Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("list tickets affected by SLA policy change: %w", err)
	}
	return ids, nil
}

// nonEmpty returns s, or a list that matches no ID or tier when s is empty,
// because "IN ()" is not valid SQL.
func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return []string{""}
	}
	return s
}

func tiers(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// applyPolicyPatch changes p in place and reports whether anything changed.
func applyPolicyPatch(p *models.SLAPolicy, patch PolicyPatch) bool {
	changed := false
	if patch.Name.Set && patch.Name.Value != p.Name {
		p.Name, changed = patch.Name.Value, true
	}
	if patch.IsDefault.Set && patch.IsDefault.Value != p.IsDefault {
		p.IsDefault, changed = patch.IsDefault.Value, true
	}
	if patch.Tier.Set && strings.TrimSpace(patch.Tier.Value) != p.Tier {
		p.Tier, changed = strings.TrimSpace(patch.Tier.Value), true
	}
	if patch.AccountIDs.Set {
		ids := models.UniqueTrimmed(patch.AccountIDs.Value)
		if !slices.Equal(ids, p.AccountIDs) {
			p.AccountIDs, changed = ids, true
		}
	}
	if patch.BusinessHoursID.Set {
		var next *string
		if !patch.BusinessHoursID.Null {
			next = &patch.BusinessHoursID.Value
		}
		if !equalPtr(p.BusinessHoursID, next) {
			p.BusinessHoursID, changed = next, true
		}
	}
	if patch.WarnBeforeMinutes.Set {
		var next *int
		if !patch.WarnBeforeMinutes.Null {
			next = &patch.WarnBeforeMinutes.Value
		}
		if !equalPtr(p.WarnBeforeMinutes, next) {
			p.WarnBeforeMinutes, changed = next, true
		}
	}
	if patch.FirstResponse.Set && patch.FirstResponse.Value != p.FirstResponse {
		p.FirstResponse, changed = patch.FirstResponse.Value, true
	}
	if patch.Resolution.Set && patch.Resolution.Value != p.Resolution {
		p.Resolution, changed = patch.Resolution.Value, true
	}
	return changed
}

// validatePolicy checks p against the stored accounts, schedules and other
// policies.
func validatePolicy(tx *gorm.DB, p models.SLAPolicy) error {
	for _, t := range []struct {
		field   string
		targets models.SLATargets
	}{{"body.firstResponse", p.FirstResponse}, {"body.resolution", p.Resolution}} {
		if err := validateTargets(t.field, t.targets, p.BusinessHoursID); err != nil {
			return err
		}
	}
	if w := p.WarnBeforeMinutes; w != nil && (*w < 1 || *w > maxTargetMinutes) {
		return outpost.Invalid("body.warnBeforeMinutes", *w, "must be 1 to %d minutes, or null for no warning", maxTargetMinutes)
	}
	if p.BusinessHoursID != nil {
		var n int64
		if err := tx.Model(&models.BusinessHours{}).Where("id = ?", *p.BusinessHoursID).Count(&n).Error; err != nil {
			return fmt.Errorf("check business hours: %w", err)
		}
		if n == 0 {
			return outpost.Invalid("body.businessHoursId", *p.BusinessHoursID, "no business-hours schedule has this ID; create one with POST /api/business-hours")
		}
	}

	if p.Tier != "" {
		var other []string
		err := tx.Model(&models.SLAPolicy{}).Where("tier = ? AND id <> ? AND deleted_at IS NULL", p.Tier, p.ID).Pluck("id", &other).Error
		if err != nil {
			return fmt.Errorf("check SLA policy tier: %w", err)
		}
		if len(other) > 0 {
			return &outpost.ConflictError{Field: "body.tier", Value: p.Tier, Message: fmt.Sprintf("policy %s already applies to this tier; edit that policy instead", other[0])}
		}
	}
	for i, id := range p.AccountIDs {
		var n int64
		if err := tx.Model(&models.Account{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return fmt.Errorf("check account: %w", err)
		}
		if n == 0 {
			return outpost.Invalid(fmt.Sprintf("body.accountIds[%d]", i), id, "no account has this ID; list accounts with GET /api/accounts")
		}
	}
	if len(p.AccountIDs) > 0 {
		var other []models.SLAPolicy
		err := tx.Select("id", "account_ids").
			Where("account_ids && ?::text[] AND id <> ? AND deleted_at IS NULL", pq.StringArray(p.AccountIDs), p.ID).
			Find(&other).Error
		if err != nil {
			return fmt.Errorf("check SLA policy accounts: %w", err)
		}
		if len(other) > 0 {
			return &outpost.ConflictError{Field: "body.accountIds", Value: p.AccountIDs, Message: fmt.Sprintf("policy %s already names one of these accounts; an account can be named by one policy only", other[0].ID)}
		}
	}
	return nil
}

func validateTargets(field string, t models.SLATargets, businessHoursID *string) error {
	switch t.Clock {
	case models.ClockCalendar:
	case models.ClockBusiness:
		if businessHoursID == nil {
			return outpost.Invalid(field+".clock", t.Clock, "business time needs a schedule; set businessHoursId or use clock calendar")
		}
	default:
		return outpost.Invalid(field+".clock", t.Clock, "must be calendar or business")
	}
	for _, m := range []struct {
		name    string
		minutes int
	}{{"urgent", t.Urgent}, {"high", t.High}, {"medium", t.Medium}, {"low", t.Low}} {
		if m.minutes < 1 || m.minutes > maxTargetMinutes {
			return outpost.Invalid(field+"."+m.name, m.minutes, "must be 1 to %d minutes", maxTargetMinutes)
		}
	}
	return nil
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
