package api

import "github.com/outposthq/outpost/models"

// OperationRoles returns the access table to the external tests.
func OperationRoles() map[string][]models.Role { return operationRoles }

// AuditedOperations returns the operations that withAudit records.
func AuditedOperations() map[string]string { return auditedOperations }

// ClientAddress exposes clientAddress to the external tests.
var ClientAddress = clientAddress

// RequestHash exposes requestHash to the external tests.
var RequestHash = requestHash
