package helpdesk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/idempotency"
	"github.com/outposthq/outpost/models"
	"github.com/outposthq/outpost/outbox"
	"github.com/outposthq/outpost/paging"
)

// NewAccount is the input of CreateAccount.
type NewAccount struct {
	Name       string
	Domain     string
	ExternalID string
	Notes      string
	Tier       string
}

// AccountPatch is the input of UpdateAccount. Unset fields keep their value.
type AccountPatch struct {
	Name       outpost.Field[string]
	Domain     outpost.Field[string]
	ExternalID outpost.Field[string]
	Notes      outpost.Field[string]
	Tier       outpost.Field[string]
}

// AccountDetail is an account with its support history.
type AccountDetail struct {
	models.Account
	TicketCounts  map[models.Status]int64 `json:"ticketCounts" doc:"Number of the account's tickets in each status."`
	RecentTickets []models.Ticket         `json:"recentTickets" doc:"The account's most recently created tickets, newest first."`
}

// recentTicketCount is the number of tickets AccountDetail lists.
const recentTicketCount = 10

var accountSortKeys = map[string]string{"createdAt": "created_at", "updatedAt": "updated_at"}

// CreateAccount stores a new account and emits account.created.
func (s *Service) CreateAccount(ctx context.Context, in NewAccount) (models.Account, error) {
	now := s.now()
	acc := models.Account{
		ID:         models.NewID(models.PrefixAccount),
		Name:       in.Name,
		Domain:     in.Domain,
		ExternalID: in.ExternalID,
		Notes:      in.Notes,
		Tier:       strings.TrimSpace(in.Tier),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	err := s.commit(ctx, func(tx *gorm.DB) ([]models.Event, error) {
		if err := tx.Create(&acc).Error; err != nil {
			return nil, accountWriteError(err, acc.ExternalID)
		}
		if err := idempotency.RecordCreated(ctx, tx, acc.ID); err != nil {
			return nil, err
		}
		evt, err := outbox.Append(tx, now, outbox.AccountCreated, acc)
		if err != nil {
			return nil, err
		}
		return []models.Event{evt}, nil
	})
	return acc, err
}

// UpdateAccount applies patch to account id. A tier change runs the ticket
// hook, which recomputes the SLA of the account's unfinished tickets.
func (s *Service) UpdateAccount(ctx context.Context, id string, patch AccountPatch) (models.Account, error) {
	var acc models.Account
	err := s.commitHooked(ctx, func(tx *gorm.DB) ([]models.Event, hookCall, error) {
		if err := lockByID(tx, &acc, "account", id); err != nil {
			return nil, nil, err
		}
		if patch.Tier.Set {
			patch.Tier.Value = strings.TrimSpace(patch.Tier.Value)
		}
		changed := applyString(&acc.Name, patch.Name)
		changed = applyString(&acc.Domain, patch.Domain) || changed
		changed = applyString(&acc.ExternalID, patch.ExternalID) || changed
		changed = applyString(&acc.Notes, patch.Notes) || changed
		tierChanged := applyString(&acc.Tier, patch.Tier)
		if !changed && !tierChanged {
			return nil, nil, nil
		}
		acc.UpdatedAt = s.now()
		if err := tx.Save(&acc).Error; err != nil {
			return nil, nil, accountWriteError(err, acc.ExternalID)
		}
		if tierChanged {
			return nil, s.accountChanged(acc.ID), nil
		}
		return nil, nil, nil
	})
	return acc, err
}

// GetAccount returns account id with its ticket counts and recent tickets.
func (s *Service) GetAccount(ctx context.Context, id string) (AccountDetail, error) {
	db := s.db.WithContext(ctx)
	var d AccountDetail
	if err := db.Take(&d.Account, "id = ?", id).Error; err != nil {
		if isNotFound(err) {
			return d, outpost.NotFound("account", id)
		}
		return d, fmt.Errorf("load account: %w", err)
	}

	var counts []struct {
		Status models.Status
		Count  int64
	}
	err := db.Model(&models.Ticket{}).Select("status, count(*) AS count").
		Where("account_id = ?", id).Group("status").Scan(&counts).Error
	if err != nil {
		return d, fmt.Errorf("count account tickets: %w", err)
	}
	d.TicketCounts = map[models.Status]int64{
		models.StatusOpen: 0, models.StatusPending: 0, models.StatusResolved: 0, models.StatusClosed: 0,
	}
	for _, c := range counts {
		d.TicketCounts[c.Status] = c.Count
	}

	err = db.Where("account_id = ?", id).Order("created_at DESC, id DESC").
		Limit(recentTicketCount).Find(&d.RecentTickets).Error
	if err != nil {
		return d, fmt.Errorf("load recent account tickets: %w", err)
	}
	return d, nil
}

// AccountFilter narrows ListAccounts.
type AccountFilter struct {
	ExternalID string
	Domain     string
	Tier       string
}

// ListAccounts returns one page of accounts and the next page's cursor.
func (s *Service) ListAccounts(ctx context.Context, f AccountFilter, p paging.Params) ([]models.Account, *string, error) {
	q, err := paging.New(p, accountSortKeys, "-createdAt")
	if err != nil {
		return nil, nil, err
	}
	db := s.db.WithContext(ctx).Model(&models.Account{})
	if f.ExternalID != "" {
		db = db.Where("external_id = ?", f.ExternalID)
	}
	if f.Domain != "" {
		db = db.Where("domain = ?", f.Domain)
	}
	if f.Tier != "" {
		db = db.Where("tier = ?", f.Tier)
	}
	var rows []models.Account
	if err := q.Apply(db, "accounts").Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list accounts: %w", err)
	}
	page, next := paging.Page(q, rows, func(a models.Account) (time.Time, string) {
		if q.SortColumn() == "updatedAt" {
			return a.UpdatedAt, a.ID
		}
		return a.CreatedAt, a.ID
	})
	return page, next, nil
}

func accountWriteError(err error, externalID string) error {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return &outpost.ConflictError{
			Field:   "body.externalId",
			Value:   externalID,
			Message: "another account already has this externalId; look it up with GET /api/accounts?externalId=…",
		}
	}
	return fmt.Errorf("save account: %w", err)
}
