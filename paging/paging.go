// Package paging implements keyset pagination with opaque cursors. A page is
// ordered by a timestamp column and the row ID, and the cursor stores the
// last row's values, so pages stay stable while rows are inserted.
package paging

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/outposthq/outpost"
)

// Limits on the page size.
const (
	DefaultLimit = 25
	MaxLimit     = 100
)

// Params selects one page of a list.
type Params struct {
	// Limit is the page size; zero means DefaultLimit.
	Limit int
	// Cursor is the nextCursor of the previous page, or empty for the first.
	Cursor string
	// Sort is a sort key such as "createdAt", or "-createdAt" for
	// descending order; empty means the list's default.
	Sort string
}

type cursor struct {
	Sort string    `json:"s"`
	Time time.Time `json:"t"`
	ID   string    `json:"i"`
}

// Query is a prepared keyset query for one page.
type Query struct {
	sort   string
	column string
	desc   bool
	limit  int
	after  *cursor
}

// New validates p against the sort keys the list offers, which map the API
// name of each key to its column. defaultSort applies when p.Sort is empty.
func New(p Params, keys map[string]string, defaultSort string) (*Query, error) {
	limit := p.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, outpost.Invalid("query.limit", p.Limit, "limit must be between 1 and %d", MaxLimit)
	}

	sort := p.Sort
	if sort == "" {
		sort = defaultSort
	}
	name := strings.TrimPrefix(sort, "-")
	column, ok := keys[name]
	if !ok {
		return nil, outpost.Invalid("query.sort", p.Sort, "unknown sort key; use one of %s, with a leading - for descending order", sortNames(keys))
	}
	q := &Query{sort: sort, column: column, desc: strings.HasPrefix(sort, "-"), limit: limit}

	if p.Cursor != "" {
		c, err := decode(p.Cursor)
		if err != nil {
			return nil, outpost.Invalid("query.cursor", p.Cursor, "malformed cursor; pass the nextCursor of the previous page unchanged, or omit it for the first page")
		}
		if c.Sort != sort {
			return nil, outpost.Invalid("query.cursor", p.Cursor, "cursor belongs to sort %q; repeat the request with that sort, or omit the cursor to start over", c.Sort)
		}
		q.after = &c
	}
	return q, nil
}

// Apply adds the keyset condition, the order and the limit to db. It requests
// one row more than the page size, so that Page can tell whether a next
// page exists.
func (q *Query) Apply(db *gorm.DB, table string) *gorm.DB {
	col := table + "." + q.column
	id := table + ".id"
	dir := "ASC"
	op := ">"
	if q.desc {
		dir, op = "DESC", "<"
	}
	if q.after != nil {
		db = db.Where(fmt.Sprintf("(%s, %s) %s (?, ?)", col, id, op), q.after.Time, q.after.ID)
	}
	return db.Order(fmt.Sprintf("%s %s, %s %s", col, dir, id, dir)).Limit(q.limit + 1)
}

// Page trims rows fetched by a query built with Apply to the page size and
// returns the cursor of the next page, or nil on the last page. key returns
// the sort column's value and the ID of a row.
func Page[T any](q *Query, rows []T, key func(T) (time.Time, string)) ([]T, *string) {
	if len(rows) <= q.limit {
		return rows, nil
	}
	rows = rows[:q.limit]
	t, id := key(rows[len(rows)-1])
	next := encode(cursor{Sort: q.sort, Time: t, ID: id})
	return rows, &next
}

// SortColumn returns the API name of the sort key, without direction.
func (q *Query) SortColumn() string { return strings.TrimPrefix(q.sort, "-") }

func encode(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decode(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, err
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, err
	}
	if c.ID == "" || c.Sort == "" {
		return cursor{}, fmt.Errorf("incomplete cursor")
	}
	// PostgreSQL rejects NUL characters and invalid UTF-8 in text values.
	for _, s := range []string{c.ID, c.Sort} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return cursor{}, fmt.Errorf("cursor contains invalid text")
		}
	}
	return c, nil
}

func sortNames(keys map[string]string) string {
	return strings.Join(slices.Sorted(maps.Keys(keys)), ", ")
}
