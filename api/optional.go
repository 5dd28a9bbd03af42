package api

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost"
)

// Optional is a member of a JSON merge patch body. It records whether the
// request named the field, so that false, 0 and "" are stored as sent. It
// rejects null because the field cannot be cleared. A member that accepts
// null is a Nullable.
type Optional[T any] struct {
	Sent  bool
	Null  bool
	Value T
}

// UnmarshalJSON records that the field was sent and decodes its value.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Sent = true
	if bytes.Equal(b, []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Resolve rejects null. huma's validation (v2.37) skips null members that are
// not required, so without this check null would store the zero value.
func (o *Optional[T]) Resolve(_ huma.Context, prefix *huma.PathBuffer) []error {
	if !o.Null {
		return nil
	}
	return []error{&huma.ErrorDetail{
		Location: prefix.String(),
		Message:  "expected a value, not null; omit the field to keep its current value",
	}}
}

// Schema describes the field on the wire as its value type.
func (o Optional[T]) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeOf(o.Value), true, "")
}

// Field converts o to the domain's representation of a patch member.
func (o Optional[T]) Field() outpost.Field[T] {
	return outpost.Field[T]{Set: o.Sent, Null: o.Null, Value: o.Value}
}

// Nullable is a merge patch member that accepts null, which clears the
// field. Tag the field nullable:"true" so that the schema allows null.
type Nullable[T any] struct {
	Optional[T]
}

// Resolve accepts every value, null included.
func (n *Nullable[T]) Resolve(huma.Context, *huma.PathBuffer) []error { return nil }
