// Package models holds the gorm structs that map Outpost's tables, their JSON
// representation and the helpers that make record IDs.
package models

import (
	"fmt"
	"strings"

	"go.jetify.com/typeid"
)

// ID prefixes. Every ID is a TypeID: the prefix, an underscore and a
// time-sortable UUIDv7 suffix in base32.
const (
	PrefixAccount  = "acc"
	PrefixAgent    = "agt"
	PrefixTicket   = "tkt"
	PrefixMessage  = "msg"
	PrefixChange   = "chg"
	PrefixEvent    = "evt"
	PrefixEndpoint = "whk"
	PrefixDelivery = "dlv"
	PrefixAttempt  = "att"
	PrefixAPIKey   = "key"
	PrefixPolicy   = "slp"
	PrefixSchedule = "bhr"
	PrefixAudit    = "aud"
	PrefixSession  = "ses"
)

// NewID returns a new TypeID with prefix. It panics only if prefix is not a
// valid TypeID prefix, which is a programming error.
func NewID(prefix string) string {
	id, err := typeid.WithPrefix(prefix)
	if err != nil {
		panic(fmt.Sprintf("models: invalid ID prefix %q: %v", prefix, err))
	}
	return id.String()
}

// ValidID reports whether s is a well-formed TypeID with prefix.
func ValidID(prefix, s string) bool {
	if !strings.HasPrefix(s, prefix+"_") {
		return false
	}
	id, err := typeid.FromString(s)
	return err == nil && id.Prefix() == prefix
}
