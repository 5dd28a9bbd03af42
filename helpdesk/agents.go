package helpdesk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/audit"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/paging"
)

// NewAgent is the input of CreateAgent.
type NewAgent struct {
	Name  string
	Email string
	// Role is the agent's role when signed in. Empty means agent.
	Role models.Role
	// PasswordHash, from auth.HashPassword, lets the agent sign in; nil
	// leaves the agent unable to sign in until a password is set.
	PasswordHash *string
}

// AgentPatch is the input of UpdateAgent. Unset fields keep their value.
type AgentPatch struct {
	Name   outpost.Field[string]
	Email  outpost.Field[string]
	Active outpost.Field[bool]
	Role   outpost.Field[models.Role]
}

var agentSortKeys = map[string]string{"createdAt": "created_at", "updatedAt": "updated_at"}

// CreateAgent stores a new, active agent. Emails are unique regardless of
// case.
func (s *Service) CreateAgent(ctx context.Context, in NewAgent) (models.Agent, error) {
	if in.Role == "" {
		in.Role = models.RoleAgent
	}
	if !in.Role.Valid() {
		return models.Agent{}, outpost.Invalid("body.role", in.Role, "invalid role %q; use admin, agent or viewer", in.Role)
	}
	now := s.now()
	agent := models.Agent{
		ID:           models.NewID(models.PrefixAgent),
		Name:         in.Name,
		Email:        models.NormalizeEmail(in.Email),
		Active:       true,
		Role:         in.Role,
		PasswordHash: in.PasswordHash,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&agent).Error; err != nil {
			return agentWriteError(err, agent.Email)
		}
		return audit.RecordChange(ctx, tx, agent.ID)
	})
	return agent, err
}

// UpdateAgent applies patch to agent id. Deactivating an agent ends their
// sessions and leaves their current assignments in place. A new role
// applies to the agent's next request.
func (s *Service) UpdateAgent(ctx context.Context, id string, patch AgentPatch) (models.Agent, error) {
	var agent models.Agent
	err := s.commit(ctx, func(tx *gorm.DB) ([]models.Event, error) {
		if err := lockByID(tx, &agent, "agent", id); err != nil {
			return nil, err
		}
		if patch.Email.Set {
			patch.Email.Value = models.NormalizeEmail(patch.Email.Value)
		}
		changed := applyString(&agent.Name, patch.Name)
		changed = applyString(&agent.Email, patch.Email) || changed
		if patch.Active.Set && agent.Active != patch.Active.Value {
			agent.Active = patch.Active.Value
			changed = true
			if !agent.Active {
				if err := tx.Delete(&models.Session{}, "agent_id = ?", agent.ID).Error; err != nil {
					return nil, fmt.Errorf("end sessions of agent: %w", err)
				}
			}
		}
		if patch.Role.Set && agent.Role != patch.Role.Value {
			if !patch.Role.Value.Valid() {
				return nil, outpost.Invalid("body.role", patch.Role.Value, "invalid role %q; use admin, agent or viewer", patch.Role.Value)
			}
			agent.Role = patch.Role.Value
			changed = true
		}
		if !changed {
			return nil, nil
		}
		agent.UpdatedAt = s.now()
		if err := tx.Save(&agent).Error; err != nil {
			return nil, agentWriteError(err, agent.Email)
		}
		return nil, audit.RecordChange(ctx, tx, agent.ID)
	})
	return agent, err
}

// GetAgent returns agent id.
func (s *Service) GetAgent(ctx context.Context, id string) (models.Agent, error) {
	var agent models.Agent
	err := s.db.WithContext(ctx).Take(&agent, "id = ?", id).Error
	if isNotFound(err) {
		return agent, outpost.NotFound("agent", id)
	}
	if err != nil {
		return agent, fmt.Errorf("load agent: %w", err)
	}
	return agent, nil
}

// ListAgents returns one page of agents, optionally only the active ones.
func (s *Service) ListAgents(ctx context.Context, activeOnly bool, p paging.Params) ([]models.Agent, *string, error) {
	q, err := paging.New(p, agentSortKeys, "createdAt")
	if err != nil {
		return nil, nil, err
	}
	db := s.db.WithContext(ctx).Model(&models.Agent{})
	if activeOnly {
		db = db.Where("active")
	}
	var rows []models.Agent
	if err := q.Apply(db, "agents").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list agents: %w", err)
	}
	page, next := paging.Page(q, rows, func(a models.Agent) (time.Time, string) {
		if q.SortColumn() == "updatedAt" {
			return a.UpdatedAt, a.ID
		}
		return a.CreatedAt, a.ID
	})
	return page, next, nil
}

func agentWriteError(err error, email string) error {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return &outpost.ConflictError{
			Field:   "body.email",
			Value:   email,
			Message: "another agent already has this email address",
		}
	}
	return fmt.Errorf("save agent: %w", err)
}
