package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/auth"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/webhooks"
)

// Config is the effective configuration, read from OUTPOST_* environment
// variables. The README lists every variable.
type Config struct {
	DatabaseURL string // OUTPOST_DATABASE_URL
	RedisURL    string // OUTPOST_REDIS_URL
	HTTPAddr    string // OUTPOST_HTTP_ADDR

	LogFormat string     // OUTPOST_LOG_FORMAT: json or text
	LogLevel  slog.Level // OUTPOST_LOG_LEVEL: debug, info, warn or error

	// ShutdownTimeout bounds a graceful stop of each role.
	ShutdownTimeout time.Duration // OUTPOST_SHUTDOWN_TIMEOUT

	WorkerConcurrency   int           // OUTPOST_WORKER_CONCURRENCY
	WorkerPollInterval  time.Duration // OUTPOST_WORKER_POLL_INTERVAL
	DispatchTimeout     time.Duration // OUTPOST_DISPATCH_TIMEOUT
	OutboxRelayInterval time.Duration // OUTPOST_OUTBOX_RELAY_INTERVAL
	SLASweepInterval    time.Duration // OUTPOST_SLA_SWEEP_INTERVAL

	AnalyticsRefreshInterval   time.Duration // OUTPOST_ANALYTICS_REFRESH_INTERVAL
	AnalyticsReconcileInterval time.Duration // OUTPOST_ANALYTICS_RECONCILE_INTERVAL

	Webhooks          webhooks.Config // OUTPOST_WEBHOOK_*
	ReconcileInterval time.Duration   // OUTPOST_WEBHOOK_RECONCILE_INTERVAL

	// RateLimitPerMinute is the sustained request rate of one API key; 0
	// turns rate limiting off. RateLimitBurst is how many requests a key may
	// send at once.
	RateLimitPerMinute int // OUTPOST_RATE_LIMIT_PER_MINUTE
	RateLimitBurst     int // OUTPOST_RATE_LIMIT_BURST

	// Sessions sets the lifetimes of dashboard sessions.
	Sessions auth.Config // OUTPOST_SESSION_IDLE_TIMEOUT, OUTPOST_SESSION_MAX_AGE
	// SecureCookies sets the Secure attribute of the session cookie, so
	// browsers send it over HTTPS only.
	SecureCookies bool // OUTPOST_SESSION_COOKIE_SECURE
	// TrustedProxies are reverse proxies whose X-Forwarded-For names the
	// client address for sign-in throttling.
	TrustedProxies []netip.Prefix // OUTPOST_TRUSTED_PROXIES
	// TrustedOrigins are other origins whose pages may send
	// state-changing requests with the session cookie.
	TrustedOrigins []string // OUTPOST_TRUSTED_ORIGINS
	// Monitoring serves the queue UI at /monitoring to signed-in admins.
	Monitoring bool // OUTPOST_MONITORING

	// MetricsAddr is the listen address of the worker's and the scheduler's
	// /metrics server; empty turns that server off. The API always serves /metrics on its
	// own address.
	MetricsAddr string // OUTPOST_METRICS_ADDR
}

// defaultDatabaseURL and defaultRedisURL suit a developer machine with
// PostgreSQL and Redis on their standard local ports.
const (
	defaultDatabaseURL = "postgres://root@127.0.0.1:5432/outpost?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultHTTPAddr    = "127.0.0.1:8080"
)

// loadConfig reads the configuration from getenv and validates it.
func loadConfig(getenv func(string) string) (Config, error) {
	p := envParser{getenv: getenv}
	cfg := Config{
		DatabaseURL:         p.str("OUTPOST_DATABASE_URL", defaultDatabaseURL),
		RedisURL:            p.str("OUTPOST_REDIS_URL", defaultRedisURL),
		HTTPAddr:            p.str("OUTPOST_HTTP_ADDR", defaultHTTPAddr),
		LogFormat:           p.oneOf("OUTPOST_LOG_FORMAT", "json", "json", "text"),
		LogLevel:            p.level("OUTPOST_LOG_LEVEL", slog.LevelInfo),
		ShutdownTimeout:     p.duration("OUTPOST_SHUTDOWN_TIMEOUT", 20*time.Second),
		WorkerConcurrency:   p.integer("OUTPOST_WORKER_CONCURRENCY", 10),
		WorkerPollInterval:  p.duration("OUTPOST_WORKER_POLL_INTERVAL", 100*time.Millisecond),
		DispatchTimeout:     p.duration("OUTPOST_DISPATCH_TIMEOUT", 2*time.Second),
		OutboxRelayInterval: p.duration("OUTPOST_OUTBOX_RELAY_INTERVAL", 5*time.Second),
		SLASweepInterval:    p.duration("OUTPOST_SLA_SWEEP_INTERVAL", time.Minute),

		AnalyticsRefreshInterval:   p.duration("OUTPOST_ANALYTICS_REFRESH_INTERVAL", 10*time.Second),
		AnalyticsReconcileInterval: p.duration("OUTPOST_ANALYTICS_RECONCILE_INTERVAL", 10*time.Minute),
		Webhooks: webhooks.Config{
			RetrySchedule:          p.durations("OUTPOST_WEBHOOK_RETRY_SCHEDULE", webhooks.DefaultRetrySchedule),
			Timeout:                p.duration("OUTPOST_WEBHOOK_TIMEOUT", 15*time.Second),
			TaskTimeout:            p.duration("OUTPOST_WEBHOOK_TASK_TIMEOUT", 0),
			MaxResponseBytes:       int64(p.integer("OUTPOST_WEBHOOK_MAX_RESPONSE_BYTES", 64<<10)),
			MaxInFlightPerEndpoint: p.integer("OUTPOST_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", 4),
			MaxRetryAfter:          p.duration("OUTPOST_WEBHOOK_MAX_RETRY_AFTER", 6*time.Hour),
			DisableAfter:           p.duration("OUTPOST_WEBHOOK_DISABLE_AFTER", 5*24*time.Hour),
			AllowPrivateNetworks:   p.boolean("OUTPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS", false),
		},
		ReconcileInterval:  p.duration("OUTPOST_WEBHOOK_RECONCILE_INTERVAL", time.Minute),
		MetricsAddr:        p.str("OUTPOST_METRICS_ADDR", ""),
		RateLimitPerMinute: p.integer("OUTPOST_RATE_LIMIT_PER_MINUTE", 600),
		RateLimitBurst:     p.integer("OUTPOST_RATE_LIMIT_BURST", 100),
		Sessions: auth.Config{
			IdleTimeout:     p.duration("OUTPOST_SESSION_IDLE_TIMEOUT", auth.DefaultIdleTimeout),
			AbsoluteTimeout: p.duration("OUTPOST_SESSION_MAX_AGE", auth.DefaultAbsoluteTimeout),
		},
		SecureCookies:  p.boolean("OUTPOST_SESSION_COOKIE_SECURE", true),
		TrustedProxies: p.prefixes("OUTPOST_TRUSTED_PROXIES"),
		TrustedOrigins: p.list("OUTPOST_TRUSTED_ORIGINS"),
		Monitoring:     p.boolean("OUTPOST_MONITORING", true),
	}
	if p.err != nil {
		return cfg, p.err
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	if _, err := database.WithDatabase(c.DatabaseURL, "x"); err != nil {
		return fmt.Errorf("OUTPOST_DATABASE_URL: %w", err)
	}
	if !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		return fmt.Errorf("OUTPOST_REDIS_URL must look like redis://host:6379/0")
	}
	if c.WorkerConcurrency < 1 {
		return fmt.Errorf("OUTPOST_WORKER_CONCURRENCY must be at least 1, got %d", c.WorkerConcurrency)
	}
	if c.DispatchTimeout < 10*time.Millisecond {
		return fmt.Errorf("OUTPOST_DISPATCH_TIMEOUT must be at least 10ms, got %s", c.DispatchTimeout)
	}
	if c.WorkerPollInterval < 10*time.Millisecond {
		return fmt.Errorf("OUTPOST_WORKER_POLL_INTERVAL must be at least 10ms, got %s", c.WorkerPollInterval)
	}
	if c.OutboxRelayInterval < time.Second {
		return fmt.Errorf("OUTPOST_OUTBOX_RELAY_INTERVAL must be at least 1s, got %s", c.OutboxRelayInterval)
	}
	if c.SLASweepInterval < time.Second {
		return fmt.Errorf("OUTPOST_SLA_SWEEP_INTERVAL must be at least 1s, got %s", c.SLASweepInterval)
	}
	if c.AnalyticsRefreshInterval < time.Second {
		return fmt.Errorf("OUTPOST_ANALYTICS_REFRESH_INTERVAL must be at least 1s, got %s", c.AnalyticsRefreshInterval)
	}
	if c.AnalyticsReconcileInterval < time.Second {
		return fmt.Errorf("OUTPOST_ANALYTICS_RECONCILE_INTERVAL must be at least 1s, got %s", c.AnalyticsReconcileInterval)
	}
	if c.Webhooks.Timeout < time.Second {
		return fmt.Errorf("OUTPOST_WEBHOOK_TIMEOUT must be at least 1s, got %s", c.Webhooks.Timeout)
	}
	if c.Webhooks.MaxResponseBytes < 0 {
		return fmt.Errorf("OUTPOST_WEBHOOK_MAX_RESPONSE_BYTES must not be negative")
	}
	for _, d := range c.Webhooks.RetrySchedule {
		if d < time.Second {
			return fmt.Errorf("OUTPOST_WEBHOOK_RETRY_SCHEDULE: every delay must be at least 1s, got %s", d)
		}
	}
	if c.ReconcileInterval < time.Second {
		return fmt.Errorf("OUTPOST_WEBHOOK_RECONCILE_INTERVAL must be at least 1s, got %s", c.ReconcileInterval)
	}
	if c.Webhooks.DisableAfter < time.Minute {
		return fmt.Errorf("OUTPOST_WEBHOOK_DISABLE_AFTER must be at least 1m, got %s", c.Webhooks.DisableAfter)
	}
	if c.RateLimitPerMinute < 0 {
		return fmt.Errorf("OUTPOST_RATE_LIMIT_PER_MINUTE must be 0 (off) or more, got %d", c.RateLimitPerMinute)
	}
	if c.RateLimitPerMinute > 0 && c.RateLimitBurst < 1 {
		return fmt.Errorf("OUTPOST_RATE_LIMIT_BURST must be at least 1, got %d", c.RateLimitBurst)
	}
	if err := c.Sessions.Validate(); err != nil {
		return fmt.Errorf("OUTPOST_SESSION_IDLE_TIMEOUT and OUTPOST_SESSION_MAX_AGE: %w", err)
	}
	cop := http.NewCrossOriginProtection()
	for _, origin := range c.TrustedOrigins {
		if err := cop.AddTrustedOrigin(origin); err != nil {
			return fmt.Errorf("OUTPOST_TRUSTED_ORIGINS: %w; write each origin as scheme://host[:port], such as https://support.example", err)
		}
	}
	if err := c.Webhooks.Validate(); err != nil {
		return fmt.Errorf("invalid OUTPOST_WEBHOOK_* settings: %w", err)
	}
	return nil
}

// logAttrs returns the configuration as log attributes, with the
// passwords in URLs masked.
func (c Config) logAttrs() []any {
	schedule := make([]string, len(c.Webhooks.RetrySchedule))
	for i, d := range c.Webhooks.RetrySchedule {
		schedule[i] = d.String()
	}
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return []any{
		slog.String("database_url", database.Redact(c.DatabaseURL)),
		slog.String("redis_url", redactRedisURL(c.RedisURL)),
		slog.String("http_addr", c.HTTPAddr),
		slog.Int("worker_concurrency", c.WorkerConcurrency),
		slog.String("worker_poll_interval", c.WorkerPollInterval.String()),
		slog.String("dispatch_timeout", c.DispatchTimeout.String()),
		slog.String("outbox_relay_interval", c.OutboxRelayInterval.String()),
		slog.String("sla_sweep_interval", c.SLASweepInterval.String()),
		slog.String("analytics_refresh_interval", c.AnalyticsRefreshInterval.String()),
		slog.String("analytics_reconcile_interval", c.AnalyticsReconcileInterval.String()),
		slog.String("webhook_timeout", c.Webhooks.Timeout.String()),
		slog.String("webhook_retry_schedule", strings.Join(schedule, ",")),
		slog.Int("webhook_max_in_flight_per_endpoint", c.Webhooks.MaxInFlightPerEndpoint),
		slog.Int64("webhook_max_response_bytes", c.Webhooks.MaxResponseBytes),
		slog.Bool("webhook_allow_private_networks", c.Webhooks.AllowPrivateNetworks),
		slog.String("webhook_reconcile_interval", c.ReconcileInterval.String()),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.Int("rate_limit_per_minute", c.RateLimitPerMinute),
		slog.Int("rate_limit_burst", c.RateLimitBurst),
		slog.String("session_idle_timeout", c.Sessions.IdleTimeout.String()),
		slog.String("session_max_age", c.Sessions.AbsoluteTimeout.String()),
		slog.Bool("session_cookie_secure", c.SecureCookies),
		slog.String("trusted_proxies", strings.Join(proxies, ",")),
		slog.String("trusted_origins", strings.Join(c.TrustedOrigins, ",")),
		slog.Bool("monitoring", c.Monitoring),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
	}
}

// envParser reads typed values and keeps the first error.
type envParser struct {
	getenv func(string) string
	err    error
}

func (p *envParser) fail(name, value, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s=%q is invalid: want %s", name, value, want)
	}
}

func (p *envParser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *envParser) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(p.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, v, "one of "+strings.Join(allowed, ", "))
	return def
}

func (p *envParser) level(name string, def slog.Level) slog.Level {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, v, "debug, info, warn or error")
		return def
	}
	return l
}

func (p *envParser) boolean(name string, def bool) bool {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "true or false")
		return def
	}
	return b
}

func (p *envParser) integer(name string, def int) int {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "an integer")
		return def
	}
	return n
}

func (p *envParser) duration(name string, def time.Duration) time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, v, "a Go duration such as 500ms, 15s or 2h")
		return def
	}
	return d
}

func (p *envParser) durations(name string, def []time.Duration) []time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d < 0 {
			p.fail(name, v, "comma-separated Go durations such as 5s,5m,30m")
			return def
		}
		out = append(out, d)
	}
	return out
}

// list reads comma-separated values, dropping empty ones.
func (p *envParser) list(name string) []string {
	var out []string
	for _, part := range strings.Split(p.str(name, ""), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// prefixes reads comma-separated IP addresses and CIDR prefixes.
func (p *envParser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, part := range p.list(name) {
		prefix, err := netip.ParsePrefix(part)
		if err != nil {
			addr, aerr := netip.ParseAddr(part)
			if aerr != nil {
				p.fail(name, part, "comma-separated IP addresses or CIDR prefixes such as 10.0.0.0/8")
				return nil
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, prefix.Masked())
	}
	return out
}

func redactRedisURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable Redis URL)"
	}
	return u.Redacted()
}
