package models

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/lib/pq"
	"golang.org/x/text/unicode/norm"
	"gorm.io/gorm"
)

// Status is the state of a ticket in its workflow.
type Status string

// Ticket statuses.
const (
	StatusOpen     Status = "open"
	StatusPending  Status = "pending"
	StatusResolved Status = "resolved"
	StatusClosed   Status = "closed"
)

// Priority is the urgency of a ticket.
type Priority string

// Ticket priorities, from least to most urgent.
const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Source is the channel a ticket arrived through.
type Source string

// Ticket sources.
const (
	SourceWeb     Source = "web"
	SourceEmail   Source = "email"
	SourceDiscord Source = "discord"
	SourceSlack   Source = "slack"
	SourceTeams   Source = "teams"
	SourceGitHub  Source = "github"
	SourceAPI     Source = "api"
	SourcePhone   Source = "phone"
	SourceChat    Source = "chat"
)

// AuthorType is who wrote a message.
type AuthorType string

// Message author types.
const (
	AuthorCustomer AuthorType = "customer"
	AuthorAgent    AuthorType = "agent"
	AuthorSystem   AuthorType = "system"
	AuthorBot      AuthorType = "bot"
)

// Account groups the customers of one organization.
type Account struct {
	ID         string    `json:"id" example:"acc_01jd5v8zq3f6n9w2k4m7r8t0yb" doc:"Account ID."`
	Name       string    `json:"name" example:"Acme Corp" doc:"Display name."`
	Domain     string    `json:"domain" example:"acme.example" doc:"Email domain of the account's customers, or empty."`
	ExternalID string    `json:"externalId" doc:"ID of the account in the caller's own system, or empty. Unique when set."`
	Tier       string    `json:"tier" example:"enterprise" doc:"Support tier, such as enterprise, or empty. SLA policies can apply to a tier."`
	Notes      string    `json:"notes" doc:"Free-form notes for agents."`
	CreatedAt  time.Time `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt  time.Time `json:"updatedAt" gorm:"autoUpdateTime:false"`
}

// Agent is a member of the support team who can be assigned tickets and
// sign in to the dashboard.
type Agent struct {
	ID     string `json:"id" example:"agt_01jd5v8zq3f6n9w2k4m7r8t0yb" doc:"Agent ID."`
	Name   string `json:"name" example:"Dana Reyes"`
	Email  string `json:"email" format:"email" example:"dana@support.example"`
	Active bool   `json:"active" doc:"Inactive agents keep their history but cannot be assigned new tickets or sign in."`
	Role   Role   `json:"role" enum:"admin,agent,viewer" doc:"What the agent may do when signed in: viewer reads, agent also works tickets, messages and accounts, admin also manages agents, API keys, SLA policies, business hours and webhooks."`
	// PasswordHash is the argon2id hash of the agent's password in PHC
	// string format, or nil when the agent cannot sign in.
	PasswordHash *string `json:"-"`
	// CanSignIn is derived from Active and PasswordHash when the row is
	// read or written.
	CanSignIn bool      `json:"canSignIn" gorm:"-" doc:"Whether the agent is active and has a password, and so can sign in."`
	CreatedAt time.Time `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `json:"updatedAt" gorm:"autoUpdateTime:false"`
}

// NormalizeEmail trims email and puts it in Unicode normalization form C,
// so that an address typed with combining characters matches the same
// address stored precomposed.
func NormalizeEmail(email string) string {
	return norm.NFC.String(strings.TrimSpace(email))
}

// AfterFind sets CanSignIn.
func (a *Agent) AfterFind(*gorm.DB) error {
	a.CanSignIn = a.Active && a.PasswordHash != nil
	return nil
}

// AfterSave sets CanSignIn.
func (a *Agent) AfterSave(*gorm.DB) error {
	a.CanSignIn = a.Active && a.PasswordHash != nil
	return nil
}

// Session is a signed-in dashboard session of an agent. Only a SHA-256 hash
// of its cookie value is stored.
type Session struct {
	ID         string    `json:"id" example:"ses_01jd5v8zq3f6n9w2k4m7r8t0yb"`
	TokenHash  []byte    `json:"-"`
	AgentID    string    `json:"agentId"`
	CreatedAt  time.Time `json:"createdAt" gorm:"autoCreateTime:false"`
	LastSeenAt time.Time `json:"lastSeenAt" doc:"Last request of the session, to the minute."`
	ExpiresAt  time.Time `json:"expiresAt" doc:"When the session ends however active it is."`
	Address    string    `json:"-"`
	UserAgent  string    `json:"-"`
}

// Requester identifies the person who raised a ticket.
type Requester struct {
	Name   string `json:"name" doc:"Name of the person who raised the ticket."`
	Email  string `json:"email" doc:"Email address, or empty."`
	Handle string `json:"handle" doc:"Handle on the source channel (Discord, Slack, GitHub user name), or empty."`
}

// Ticket is one customer request and its workflow state.
type Ticket struct {
	ID          string         `json:"id" example:"tkt_01jd5v8zq3f6n9w2k4m7r8t0yb" doc:"Ticket ID."`
	Title       string         `json:"title" example:"Cannot export invoices"`
	Description string         `json:"description"`
	Status      Status         `json:"status" enum:"open,pending,resolved,closed"`
	Priority    Priority       `json:"priority" enum:"low,medium,high,urgent"`
	Source      Source         `json:"source" enum:"web,email,discord,slack,teams,github,api,phone,chat"`
	AccountID   string         `json:"accountId"`
	AssigneeID  *string        `json:"assigneeId" doc:"Agent assigned to the ticket, or null."`
	Tags        pq.StringArray `json:"tags" gorm:"type:text[]"`
	Requester   Requester      `json:"requester" gorm:"embedded;embeddedPrefix:requester_"`
	CreatedAt   time.Time      `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt   time.Time      `json:"updatedAt" gorm:"autoUpdateTime:false"`
	ResolvedAt  *time.Time     `json:"resolvedAt" doc:"When the ticket last moved to resolved, or null if it is not resolved."`
	ClosedAt    *time.Time     `json:"closedAt" doc:"When the ticket was closed, or null if it is not closed."`
}

// Message is one entry in a ticket's conversation.
type Message struct {
	ID         string     `json:"id" example:"msg_01jd5v8zq3f6n9w2k4m7r8t0yb"`
	TicketID   string     `json:"ticketId"`
	AuthorType AuthorType `json:"authorType" enum:"customer,agent,system,bot"`
	AuthorID   *string    `json:"authorId" doc:"Agent who wrote the message when authorType is agent, or null."`
	AuthorName string     `json:"authorName"`
	Body       string     `json:"body"`
	Internal   bool       `json:"internal" doc:"Internal notes are visible to agents only."`
	CreatedAt  time.Time  `json:"createdAt" gorm:"autoCreateTime:false"`
}

// TicketChange is one entry in a ticket's change history: the fields one
// request changed, each with its old and new value.
type TicketChange struct {
	ID        string          `json:"id"`
	TicketID  string          `json:"ticketId"`
	Actor     string          `json:"actor" doc:"API key or agent that made the change."`
	Changes   json.RawMessage `json:"changes" gorm:"type:jsonb" doc:"Map of field name to {\"from\": old, \"to\": new}."`
	CreatedAt time.Time       `json:"createdAt" gorm:"autoCreateTime:false"`
}

// FieldChange is the old and new value of one changed field.
type FieldChange struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// Event is a row of the transactional outbox. Body holds the exact bytes that
// webhook deliveries send and sign.
type Event struct {
	ID           string
	Type         string
	Body         string
	CreatedAt    time.Time `gorm:"autoCreateTime:false"`
	DispatchedAt *time.Time
	FannedOutAt  *time.Time
}

// WebhookEndpoint is a URL that receives signed event deliveries.
type WebhookEndpoint struct {
	ID          string         `json:"id" example:"whk_01jd5v8zq3f6n9w2k4m7r8t0yb"`
	URL         string         `json:"url" format:"uri" example:"https://hooks.example.com/outpost"`
	Description string         `json:"description"`
	Events      pq.StringArray `json:"events" gorm:"type:text[]" doc:"Event types delivered to the endpoint; [\"*\"] means all."`
	Secret      string         `json:"-"`
	Enabled     bool           `json:"enabled"`
	CreatedAt   time.Time      `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt   time.Time      `json:"updatedAt" gorm:"autoUpdateTime:false"`

	// PreviousSecret keeps signing beside Secret until
	// PreviousSecretExpiresAt, so receivers can switch secrets without
	// rejecting deliveries.
	PreviousSecret          string     `json:"-"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt" doc:"When the secret replaced by the last rotation stops signing, or null."`

	ConsecutiveFailures int        `json:"consecutiveFailures" doc:"Failed attempts since the last success."`
	FailingSince        *time.Time `json:"failingSince" doc:"Start of the current run of failures, or null."`
	DisabledReason      string     `json:"disabledReason" doc:"Why Outpost disabled the endpoint, or empty."`
	DisabledAt          *time.Time `json:"disabledAt"`
}

// DeliveryStatus is the state of one event's delivery to one endpoint.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"
)

// WebhookDelivery is one event's delivery to one endpoint, across attempts.
type WebhookDelivery struct {
	ID            string           `json:"id" example:"dlv_01jd5v8zq3f6n9w2k4m7r8t0yb"`
	EventID       string           `json:"eventId"`
	EndpointID    string           `json:"endpointId"`
	EventType     string           `json:"eventType"`
	Status        DeliveryStatus   `json:"status" enum:"pending,succeeded,failed"`
	AttemptCount  int              `json:"attemptCount"`
	LastAttemptAt *time.Time       `json:"lastAttemptAt"`
	LastError     string           `json:"lastError" doc:"Error of the last failed attempt, or empty."`
	NextAttemptAt *time.Time       `json:"nextAttemptAt" doc:"When the next attempt is due, or null once the delivery succeeded or failed."`
	RetryBase     int              `json:"-"`
	CreatedAt     time.Time        `json:"createdAt" gorm:"autoCreateTime:false"`
	UpdatedAt     time.Time        `json:"updatedAt" gorm:"autoUpdateTime:false"`
	Attempts      []WebhookAttempt `json:"attempts" gorm:"foreignKey:DeliveryID"`
}

// WebhookAttempt records one HTTP request of a delivery.
type WebhookAttempt struct {
	ID           string    `json:"id"`
	DeliveryID   string    `json:"-"`
	Number       int       `json:"number" doc:"1 for the first attempt."`
	StartedAt    time.Time `json:"startedAt"`
	DurationMS   int       `json:"durationMs" gorm:"column:duration_ms"`
	StatusCode   *int      `json:"statusCode" doc:"HTTP status code, or null when no response arrived."`
	Error        string    `json:"error" doc:"Why the attempt failed, or empty."`
	ErrorClass   string    `json:"errorClass" doc:"Kind of failure: dns, connect, tls, timeout, http_status or blocked; empty on success."`
	ResponseBody string    `json:"responseBody" doc:"Start of the response body, truncated."`

	RequestHeaders map[string]string `json:"requestHeaders" gorm:"serializer:json" doc:"Headers sent with the request."`
}

// Role is what an API key or a signed-in agent may do. Each role includes the rights of the
// roles before it: viewer, agent, admin.
type Role string

// Roles of API keys and agents.
const (
	RoleAdmin  Role = "admin"
	RoleAgent  Role = "agent"
	RoleViewer Role = "viewer"
)

// Roles lists every role, the most powerful first.
var Roles = []Role{RoleAdmin, RoleAgent, RoleViewer}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleAgent || r == RoleViewer
}

// APIKey authenticates an integration. Only a hash of the secret is stored.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role" enum:"admin,agent,viewer" doc:"What the key may do: viewer reads, agent also works tickets, messages and accounts, admin also manages agents, API keys, SLA policies, business hours and webhooks."`
	Prefix     string     `json:"prefix" doc:"Start of the key, to recognize it; the rest is never shown again."`
	Hash       []byte     `json:"-"`
	CreatedAt  time.Time  `json:"createdAt" gorm:"autoCreateTime:false"`
	ExpiresAt  *time.Time `json:"expiresAt" doc:"When the key stops working; null means never."`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
}

// BeforeCreate stores a missing header map as an empty JSON object, because
// the column is NOT NULL.
func (a *WebhookAttempt) BeforeCreate(*gorm.DB) error {
	if a.RequestHeaders == nil {
		a.RequestHeaders = map[string]string{}
	}
	return nil
}

// AuditEntry records one change to the configuration: agents, API keys, SLA
// policies, business hours or webhook endpoints.
type AuditEntry struct {
	ID           string         `json:"id" example:"aud_01jd5v8zq3f6n9w2k4m7r8t0yb"`
	ActorType    ActorType      `json:"actorType" enum:"api_key,agent,cli" doc:"Who made the change: an API key, a signed-in agent, or the outpost command line."`
	ActorID      string         `json:"actorId" doc:"ID of the API key or agent; for cli, the operating-system user who ran the command."`
	Action       string         `json:"action" example:"update-sla-policy" doc:"Operation ID of the request."`
	ResourceType string         `json:"resourceType" enum:"agent,api_key,sla_policy,business_hours,webhook_endpoint"`
	ResourceID   string         `json:"resourceId"`
	Fields       pq.StringArray `json:"fields" gorm:"type:text[]" doc:"Top-level fields of the request body, without their values, which may hold secrets."`
	CreatedAt    time.Time      `json:"createdAt" gorm:"autoCreateTime:false"`
}

// ActorType is the kind of caller an audit entry names.
type ActorType string

// Kinds of actors.
const (
	ActorAPIKey ActorType = "api_key"
	ActorAgent  ActorType = "agent"
	ActorCLI    ActorType = "cli"
)

// TableName is the table of AuditEntry.
func (AuditEntry) TableName() string { return "audit_log" }
