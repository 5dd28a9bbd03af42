// Package outpost holds the error types that every domain package returns and
// that the API maps to problem details in one place.
package outpost

import (
	"errors"
	"fmt"
)

// ErrNotFound reports that a record addressed by id does not exist.
var ErrNotFound = errors.New("not found")

// FieldError reports input that breaks a domain rule. Field is the location
// of the value in the request, such as "body.accountId" or "query.cursor".
type FieldError struct {
	Field   string
	Value   any
	Message string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// Invalid returns a FieldError for field with a message that names the fix.
func Invalid(field string, value any, format string, args ...any) error {
	return &FieldError{Field: field, Value: value, Message: fmt.Sprintf(format, args...)}
}

// NotFoundError reports that a record addressed by id does not exist.
type NotFoundError struct {
	Kind string
	ID   string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found", e.Kind, e.ID)
}

// Is makes errors.Is(err, ErrNotFound) match every NotFoundError.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotFound returns a NotFoundError for a record of kind with id.
func NotFound(kind, id string) error {
	return &NotFoundError{Kind: kind, ID: id}
}

// ConflictError reports that a value must be unique and another record
// already has it.
type ConflictError struct {
	Field   string
	Value   any
	Message string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// Field is one member of a partial update, as decoded from a JSON merge
// patch. Set reports that the request named the field; Null reports that it
// named it with the value null.
type Field[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// Value returns a Field that is set to v.
func Value[T any](v T) Field[T] { return Field[T]{Set: true, Value: v} }
