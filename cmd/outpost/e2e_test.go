package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/apikeys"
	"github.com/outposthq/outpost/database"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

// delivery is one request that the test receiver accepted.
type delivery struct {
	header http.Header
	body   []byte
	at     time.Time
}

type envelope struct {
	ID        string          `json:"id"`
	Event     string          `json:"event"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// receiver is an httptest server that records every delivery.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries []delivery
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.deliveries = append(r.deliveries, delivery{header: req.Header.Clone(), body: body, at: time.Now()})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// waitFor returns the first delivery of event type eventType whose data has
// the given id.
func (r *receiver) waitFor(t *testing.T, eventType, dataID string, timeout time.Duration) delivery {
	t.Helper()
	var found delivery
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, d := range r.deliveries {
			var env envelope
			var data struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(d.body, &env) != nil || json.Unmarshal(env.Data, &data) != nil {
				continue
			}
			if env.Event == eventType && data.ID == dataID {
				found = d
				return true
			}
		}
		return false
	}, timeout, 20*time.Millisecond, "no %s delivery for %s", eventType, dataID)
	return found
}

// outpostProcess is an `outpost dev` run inside the test.
type outpostProcess struct {
	baseURL string
	key     string
	getenv  func(string) string
}

// startDev runs the dev role on a random loopback port against database
// name and redisURL, creates an API key with the CLI, and stops the role
// when the test ends, failing the test if it does not stop cleanly.
func startDev(t *testing.T, dbName, redisURL string) *outpostProcess {
	t.Helper()
	return startDevLogging(t, dbName, redisURL, testenv.Logger(t), io.Discard)
}

// startDevLogging is startDev with the roles logging to logger and the CLI
// writing its log to cliLog.
func startDevLogging(t *testing.T, dbName, redisURL string, logger *slog.Logger, cliLog io.Writer) *outpostProcess {
	t.Helper()
	env := map[string]string{
		"OUTPOST_DATABASE_URL":           testenv.DatabaseURL(t, dbName),
		"OUTPOST_REDIS_URL":              redisURL,
		"OUTPOST_OUTBOX_RELAY_INTERVAL":  "1s",
		"OUTPOST_SLA_SWEEP_INTERVAL":     "1s",
		"OUTPOST_DISPATCH_TIMEOUT":       "500ms",
		"OUTPOST_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s",
		"OUTPOST_SHUTDOWN_TIMEOUT":       "5s",
		"OUTPOST_LOG_LEVEL":              "debug",
		// The receivers listen on loopback.
		"OUTPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := loadConfig(getenv)
	require.NoError(t, err)
	cfg = applyDevDefaults(cfg, getenv, logger)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRoles(ctx, cfg, logger, "dev", ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "dev role did not stop cleanly")
		case <-time.After(30 * time.Second):
			t.Error("dev role did not stop within 30s of cancellation")
		}
	})

	p := &outpostProcess{baseURL: "http://" + ln.Addr().String(), getenv: getenv}
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.baseURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "API did not come up")

	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"apikey", "create", "--name", "e2e"}, getenv, nil, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	_, _ = cliLog.Write(stderr.Bytes())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	p.key = lines[len(lines)-1]
	require.True(t, strings.HasPrefix(p.key, "opk_"), "last stdout line is not a key: %q", p.key)
	return p
}

// call sends a JSON request and decodes the JSON response into out.
func (p *outpostProcess) call(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.baseURL+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, wantStatus, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out))
	}
}

type idBody struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// verifyDelivery checks both signature schemes of d with secret, computed
// here from their definitions rather than with Outpost's own code.
func verifyDelivery(t *testing.T, d delivery, secret string) envelope {
	t.Helper()
	var env envelope
	require.NoError(t, json.Unmarshal(d.body, &env))

	sig := d.header.Get("X-Outpost-Signature")
	parts := strings.Split(sig, ",")
	require.Len(t, parts, 2, "X-Outpost-Signature %q", sig)
	ts := strings.TrimPrefix(parts[0], "t=")
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), time.Unix(sec, 0), time.Minute)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(d.body)))
	require.Equal(t, "v1="+hex.EncodeToString(m.Sum(nil)), parts[1])

	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	m = hmac.New(sha256.New, key)
	m.Write([]byte(env.ID + "." + ts + "." + string(d.body)))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)), d.header.Get("webhook-signature"))
	require.Equal(t, env.ID, d.header.Get("webhook-id"))
	require.Equal(t, ts, d.header.Get("webhook-timestamp"))

	require.Equal(t, env.Event, d.header.Get("X-Outpost-Event"))
	require.Equal(t, env.ID, d.header.Get("X-Outpost-Event-Id"))
	require.True(t, strings.HasPrefix(d.header.Get("X-Outpost-Delivery-Id"), "dlv_"))
	return env
}

func TestEndToEndSignedDeliveries(t *testing.T) {
	t.Parallel()
	p := startDev(t, "e2e", testenv.RedisURL(t, 6))
	recv := newReceiver(t)

	var hook idBody
	p.call(t, http.MethodPost, "/api/webhooks", map[string]any{"url": recv.URL + "/hook", "events": []string{"*"}}, http.StatusCreated, &hook)
	require.True(t, strings.HasPrefix(hook.Secret, "whsec_"))

	var account idBody
	p.call(t, http.MethodPost, "/api/accounts", map[string]any{"name": "Acme"}, http.StatusCreated, &account)
	created := time.Now()
	var ticket idBody
	p.call(t, http.MethodPost, "/api/tickets", map[string]any{
		"title": "Cannot export invoices", "source": "discord", "priority": "high", "accountId": account.ID,
	}, http.StatusCreated, &ticket)

	env := verifyDelivery(t, recv.waitFor(t, "account.created", account.ID, 10*time.Second), hook.Secret)
	require.Equal(t, "account.created", env.Event)
	d := recv.waitFor(t, "ticket.created", ticket.ID, 10*time.Second)
	verifyDelivery(t, d, hook.Secret)
	t.Logf("ticket.created arrived %s after the create request", d.at.Sub(created).Round(time.Millisecond))

	p.call(t, http.MethodPatch, "/api/tickets/"+ticket.ID, map[string]any{"status": "resolved"}, http.StatusOK, nil)
	updated := verifyDelivery(t, recv.waitFor(t, "ticket.updated", ticket.ID, 10*time.Second), hook.Secret)
	var changes struct {
		Status  string `json:"status"`
		Changes map[string]struct {
			From any `json:"from"`
			To   any `json:"to"`
		} `json:"changes"`
	}
	require.NoError(t, json.Unmarshal(updated.Data, &changes))
	require.Equal(t, "resolved", changes.Status)
	require.Equal(t, "open", changes.Changes["status"].From)
	require.Equal(t, "resolved", changes.Changes["status"].To)
	verifyDelivery(t, recv.waitFor(t, "ticket.resolved", ticket.ID, 10*time.Second), hook.Secret)

	var deliveries struct {
		Data []struct {
			Status       string `json:"status"`
			AttemptCount int    `json:"attemptCount"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		p.call(t, http.MethodGet, "/api/webhooks/"+hook.ID+"/deliveries?status=succeeded", nil, http.StatusOK, &deliveries)
		return len(deliveries.Data) == 4
	}, 10*time.Second, 50*time.Millisecond, "want 4 succeeded deliveries in the log")
	for _, d := range deliveries.Data {
		require.Equal(t, 1, d.AttemptCount)
	}
}

// privateRedis runs a redis-server on a free loopback port that keeps
// nothing on disk, so that a restart loses every queued task.
type privateRedis struct {
	port int
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T, port int) *privateRedis {
	t.Helper()
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port = ln.Addr().(*net.TCPAddr).Port
		require.NoError(t, ln.Close())
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start(), "start redis-server (is it on the PATH?)")
	r := &privateRedis{port: port, cmd: cmd}
	t.Cleanup(r.stop)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond, "redis-server did not start on port %d", port)
	return r
}

func (r *privateRedis) stop() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

func TestEventSurvivesRedisOutage(t *testing.T) {
	t.Parallel()
	rds := startPrivateRedis(t, 0)
	p := startDev(t, "e2e_outage", fmt.Sprintf("redis://127.0.0.1:%d/0", rds.port))
	recv := newReceiver(t)

	var hook idBody
	p.call(t, http.MethodPost, "/api/webhooks", map[string]any{"url": recv.URL, "events": []string{"ticket.created", "account.created"}}, http.StatusCreated, &hook)
	var account idBody
	p.call(t, http.MethodPost, "/api/accounts", map[string]any{"name": "Outage Inc"}, http.StatusCreated, &account)
	recv.waitFor(t, "account.created", account.ID, 10*time.Second)

	rds.stop()
	start := time.Now()
	var ticket idBody
	p.call(t, http.MethodPost, "/api/tickets", map[string]any{
		"title": "Created while Redis is down", "source": "api", "accountId": account.ID,
	}, http.StatusCreated, &ticket)
	require.Less(t, time.Since(start), 5*time.Second, "create must not wait for Redis")

	db := testenv.DB(t, "e2e_outage")
	var undispatched int64
	require.NoError(t, db.Table("events").
		Where("type = 'ticket.created' AND dispatched_at IS NULL AND body LIKE ?", "%"+ticket.ID+"%").
		Count(&undispatched).Error)
	require.EqualValues(t, 1, undispatched, "the event must wait in the outbox")

	startPrivateRedis(t, rds.port)
	d := recv.waitFor(t, "ticket.created", ticket.ID, 30*time.Second)
	verifyDelivery(t, d, hook.Secret)
	t.Logf("ticket.created arrived %s after Redis came back", time.Since(start).Round(time.Millisecond))
}

func TestConfigRejectsBadValues(t *testing.T) {
	cases := map[string]string{
		"OUTPOST_WEBHOOK_RETRY_SCHEDULE": "5s,soon",
		"OUTPOST_WORKER_CONCURRENCY":     "0",
		"OUTPOST_LOG_LEVEL":              "loud",
		"OUTPOST_LOG_FORMAT":             "xml",
		"OUTPOST_DATABASE_URL":           "mysql://localhost/x",
		"OUTPOST_REDIS_URL":              "localhost:6379",
		"OUTPOST_OUTBOX_RELAY_INTERVAL":  "100ms",
		"OUTPOST_DISPATCH_TIMEOUT":       "0s",
		"OUTPOST_SLA_SWEEP_INTERVAL":     "500ms",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(func(k string) string {
				if k == name {
					return value
				}
				return ""
			})
			require.Error(t, err)
			require.Contains(t, err.Error(), name)
		})
	}
}

func TestRunRejectsUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(string) string { return "" }, nil, &stdout, &stderr)
	require.ErrorContains(t, err, `unknown command "serve"`)
	require.Contains(t, stderr.String(), "Usage: outpost")
}

func TestRedactHidesPasswords(t *testing.T) {
	require.NotContains(t, database.Redact("postgres://u:hunter2@db:5432/x"), "hunter2")
	require.NotContains(t, redactRedisURL("redis://:hunter2@cache:6379/0"), "hunter2")
}

func TestAPIKeyCommands(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OUTPOST_DATABASE_URL": testenv.DatabaseURL(t, "e2e_cli")}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, getenv, nil, &stdout, &stderr)
		return stdout.String(), err
	}

	out, err := cli("apikey", "create", "--name", "zapier")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	id := strings.Fields(lines[0])[3]
	require.True(t, strings.HasPrefix(id, "key_"), "first line %q", lines[0])

	out, err = cli("apikey", "list")
	require.NoError(t, err)
	require.Contains(t, out, id)
	require.Contains(t, out, "zapier")
	require.NotContains(t, out, secret, "list must not print the key")

	db := testenv.DB(t, "e2e_cli")
	key, err := apikeys.New(db, nil).Authenticate(context.Background(), secret)
	require.NoError(t, err)
	require.Equal(t, models.RoleAdmin, key.Role, "a key created without --role")

	out, err = cli("apikey", "create", "--name", "dashboard", "--role", "viewer")
	require.NoError(t, err)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	key, err = apikeys.New(db, nil).Authenticate(context.Background(), lines[len(lines)-1])
	require.NoError(t, err)
	require.Equal(t, models.RoleViewer, key.Role)

	_, err = cli("apikey", "create", "--name", "x", "--role", "owner")
	require.ErrorContains(t, err, `invalid --role "owner"; use admin, agent or viewer`)

	out, err = cli("apikey", "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "Revoked API key "+id)

	_, err = apikeys.New(db, nil).Authenticate(context.Background(), secret)
	require.ErrorIs(t, err, apikeys.ErrInvalidKey)

	out, err = cli("apikey", "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "was already revoked at", "a second revocation changes nothing")

	var actions []string
	require.NoError(t, db.Model(&models.AuditEntry{}).
		Where("actor_type = ? AND resource_id = ?", models.ActorCLI, id).Order("created_at").Pluck("action", &actions).Error)
	require.Equal(t, []string{"create-api-key", "revoke-api-key"}, actions,
		"command-line changes are audited, and the second revocation, which changed nothing, is not")

	_, err = cli("apikey", "revoke", "key_missing")
	require.ErrorIs(t, err, outpost.ErrNotFound)
	_, err = cli("apikey", "rotate")
	require.ErrorContains(t, err, "unknown apikey command")
}
