package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// HealthOutput is the response of the health checks.
type HealthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok"`
	}
}

func registerHealth(api huma.API, h *handlers) {
	huma.Register(api, huma.Operation{
		OperationID: "get-healthz",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Check that the process is up",
		Tags:        []string{"Health"},
	}, func(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
		out := &HealthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "get-readyz",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Check that the database and the queue are reachable",
		Description: "Answers 503 while PostgreSQL or Redis is unreachable.",
		Tags:        []string{"Health"},
		Errors:      []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
		if err := h.deps.Ready(ctx); err != nil {
			h.deps.Logger.WarnContext(ctx, "not ready", slog.String("err", err.Error()))
			return nil, huma.Error503ServiceUnavailable("not ready: " + err.Error())
		}
		out := &HealthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
}
