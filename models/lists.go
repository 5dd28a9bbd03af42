package models

import (
	"slices"
	"strings"

	"github.com/lib/pq"
)

// UniqueTrimmed returns values trimmed of surrounding space, without empty
// and repeated entries, in the order of their first occurrence. Tag and ID
// list columns store their values in this form.
func UniqueTrimmed(values []string) pq.StringArray {
	out := pq.StringArray{}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
