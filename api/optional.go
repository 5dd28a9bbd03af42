package api

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/outposthq/outpost"
)

// Optional is a member of a JSON merge patch body. It records whether the
// request named the field and whether it sent null, so that false, 0 and ""
// are stored as sent, and null can clear a nullable field.
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

// Schema describes the field on the wire as its value type.
func (o Optional[T]) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeOf(o.Value), true, "")
}

// Field converts o to the domain's representation of a patch member.
func (o Optional[T]) Field() outpost.Field[T] {
	return outpost.Field[T]{Set: o.Sent, Null: o.Null, Value: o.Value}
}
