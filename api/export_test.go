package api

import "github.com/outposthq/outpost/models"

// OperationRoles returns the access table to the external tests.
func OperationRoles() map[string][]models.Role { return operationRoles }
