package paging

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
)

var keys = map[string]string{"createdAt": "created_at", "updatedAt": "updated_at"}

func TestNewDefaults(t *testing.T) {
	q, err := New(Params{}, keys, "-createdAt")
	require.NoError(t, err)
	require.Equal(t, DefaultLimit, q.limit)
	require.True(t, q.desc)
	require.Equal(t, "created_at", q.column)
	require.Nil(t, q.after)
}

func TestNewRejectsBadInput(t *testing.T) {
	valid := encode(cursor{Sort: "createdAt", Time: time.Unix(1, 0).UTC(), ID: "tkt_x"})
	cases := []struct {
		name  string
		p     Params
		field string
	}{
		{"limit too large", Params{Limit: MaxLimit + 1}, "query.limit"},
		{"negative limit", Params{Limit: -1}, "query.limit"},
		{"unknown sort", Params{Sort: "title"}, "query.sort"},
		{"not base64", Params{Cursor: "%%%"}, "query.cursor"},
		{"not JSON", Params{Cursor: "bm90IGpzb24"}, "query.cursor"},
		{"incomplete cursor", Params{Cursor: encode(cursor{Sort: "createdAt"})}, "query.cursor"},
		{"cursor of another sort", Params{Cursor: valid, Sort: "-createdAt"}, "query.cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.p, keys, "-createdAt")
			var fe *outpost.FieldError
			require.True(t, errors.As(err, &fe), "want a FieldError, got %v", err)
			require.Equal(t, tc.field, fe.Field)
		})
	}
}

func TestPageReturnsCursorOnlyWhenMoreRows(t *testing.T) {
	q, err := New(Params{Limit: 2, Sort: "createdAt"}, keys, "-createdAt")
	require.NoError(t, err)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(i int) (time.Time, string) { return base.Add(time.Duration(i) * time.Second), "id" }

	rows, next := Page(q, []int{1, 2}, key)
	require.Equal(t, []int{1, 2}, rows)
	require.Nil(t, next)

	rows, next = Page(q, []int{1, 2, 3}, key)
	require.Equal(t, []int{1, 2}, rows)
	require.NotNil(t, next)

	q2, err := New(Params{Limit: 2, Sort: "createdAt", Cursor: *next}, keys, "-createdAt")
	require.NoError(t, err)
	require.Equal(t, base.Add(2*time.Second), q2.after.Time)
}
