package helpdesk

import (
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/outposthq/outpost"
)

// lockByID loads the row with id into dest and locks it until tx ends, so
// that concurrent updates of one record apply one after the other.
func lockByID(tx *gorm.DB, dest any, kind, id string) error {
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(dest, "id = ?", id).Error
	if isNotFound(err) {
		return outpost.NotFound(kind, id)
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", kind, err)
	}
	return nil
}

// applyString sets *dst from f when f is set and reports whether the value
// changed.
func applyString[T ~string](dst *T, f outpost.Field[T]) bool {
	if !f.Set || *dst == f.Value {
		return false
	}
	*dst = f.Value
	return true
}
