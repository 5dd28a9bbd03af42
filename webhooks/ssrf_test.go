package webhooks

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
	"github.com/outposthq/outpost/internal/testenv"
	"github.com/outposthq/outpost/models"
)

func TestCheckAddrBlocksInternal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr   string
		reason string
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.0.1", "link-local"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"255.255.255.255", "reserved"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fc00::1", "private"},
		{"fdff:ffff::1", "private"},
		{"fd00:ec2::254", "cloud metadata"},
		{"ff02::1", "multicast"},
		{"ff00::", "multicast"},
		{"::ffff:127.0.0.1", "loopback address (embedded in ::ffff:127.0.0.1)"},
		{"::ffff:10.0.0.1", "private address (embedded in ::ffff:10.0.0.1)"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"64:ff9b::a00:1", "private address (embedded in 64:ff9b::a00:1)"},
		{"64:ff9b::7f00:1", "loopback address (embedded in 64:ff9b::7f00:1)"},
		{"2002:7f00:1::", "loopback address (embedded in 2002:7f00:1::)"},
		{"2002:a9fe:a9fe::1", "cloud metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(tc.addr))
			var blocked *BlockedAddressError
			require.True(t, errors.As(err, &blocked), "want a BlockedAddressError, got %v", err)
			require.Contains(t, blocked.Reason, tc.reason)
			require.Contains(t, err.Error(), tc.reason)
		})
	}
}

func TestCheckAddrReportsEmbeddedAddress(t *testing.T) {
	t.Parallel()
	cases := []struct{ addr, embedded string }{
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"64:ff9b::7f00:1", "127.0.0.1"},
		{"2002:7f00:1::", "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			var blocked *BlockedAddressError
			require.True(t, errors.As(CheckAddr(netip.MustParseAddr(tc.addr)), &blocked))
			require.Equal(t, netip.MustParseAddr(tc.embedded), blocked.Addr)
		})
	}
}

func TestCheckAddrAllowsPublic(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{
		"8.8.8.8",
		"1.1.1.1",
		"172.32.0.1",
		"100.128.0.1",
		"2606:4700:4700::1111",
		"2a00:1450:4001:82a::200e",
		"::ffff:8.8.8.8",
		"64:ff9b::808:808",
		"2002:808:808::1",
	} {
		t.Run(addr, func(t *testing.T) {
			require.NoError(t, CheckAddr(netip.MustParseAddr(addr)))
		})
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParseAddr("127.0.0.1")
	valid := []struct {
		host string
		want netip.Addr
	}{
		{"2130706433", loopback},
		{"0x7f000001", loopback},
		{"0X7F000001", loopback},
		{"0177.0.0.1", loopback},
		{"127.1", loopback},
		{"0x7f.1", loopback},
		{"127.0.1", loopback},
		{"0x7f.0.0.0x1", loopback},
		{"10.0.0.1", netip.MustParseAddr("10.0.0.1")},
		{"0", netip.MustParseAddr("0.0.0.0")},
		{"4294967295", netip.MustParseAddr("255.255.255.255")},
	}
	for _, tc := range valid {
		t.Run(tc.host, func(t *testing.T) {
			got, ok := parseLegacyIPv4(tc.host)
			require.True(t, ok)
			require.Equal(t, tc.want, got)
		})
	}

	for _, host := range []string{
		"",
		"hooks",
		"hooks.example.com",
		"1.2.3.4.5",
		"256.0.0.1",
		"1.2.3.256",
		"127.16777216",
		"4294967296",
		"0x100000000",
		"08.0.0.1",
		"1..1",
		"1.2.3.",
		"-1.0.0.1",
		"+1.0.0.1",
		"0x",
		"1_0.0.0.1",
		"0b1.0.0.1",
		"0o177.0.0.1",
	} {
		t.Run("rejects "+host, func(t *testing.T) {
			_, ok := parseLegacyIPv4(host)
			require.False(t, ok)
		})
	}
}

func TestCreateEndpointRejectsInternalURL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	eps := NewEndpoints(e.db, futureClock)

	cases := []struct {
		url    string
		reason string
	}{
		{"http://127.0.0.1/", "loopback"},
		{"http://localhost:8080/", "localhost"},
		{"http://LocalHost./hooks", "localhost"},
		{"http://hooks.localhost/", "localhost"},
		{"http://[::1]/", "loopback"},
		{"http://2130706433/", "loopback"},
		{"http://0x7f.1/", "loopback"},
		{"http://169.254.169.254/latest/meta-data", "cloud metadata"},
		{"http://[::ffff:127.0.0.1]/", "loopback"},
		{"http://[fe80::1%25eth0]:8080/", "link-local"},
		{"https://10.1.2.3:8443/hooks", "private"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			_, err := eps.Create(context.Background(), NewEndpoint{URL: tc.url, Events: []string{AllEvents}})
			fe := requireFieldError(t, err, "body.url")
			require.Contains(t, fe.Message, tc.reason)
			require.Contains(t, fe.Message, "OUTPOST_WEBHOOK_ALLOW_PRIVATE_NETWORKS")
		})
	}
}

func TestCreateEndpointAcceptsUnresolvableName(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// checkHost accepts a name that does not resolve, as on a machine
	// without DNS, and one that resolves to public addresses, so the result
	// does not depend on the network.
	ep, err := NewEndpoints(e.db, futureClock).Create(context.Background(), NewEndpoint{
		URL:    "https://hooks.example.com/x",
		Events: []string{AllEvents},
	})
	require.NoError(t, err)
	require.Equal(t, "https://hooks.example.com/x", ep.URL)
}

func TestUpdateEndpointRejectsInternalURL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	eps := NewEndpoints(e.db, futureClock)
	ep, err := eps.Create(ctx, NewEndpoint{URL: "https://hooks.example.com/update", Events: []string{AllEvents}})
	require.NoError(t, err)

	_, err = eps.Update(ctx, ep.ID, EndpointPatch{URL: outpost.Value("http://127.0.0.1:9/hooks")})
	fe := requireFieldError(t, err, "body.url")
	require.Contains(t, fe.Message, "loopback")

	got, err := eps.Get(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, "https://hooks.example.com/update", got.URL)
}

func TestDeliverBlockedAtDialTime(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rcv := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	u, err := url.Parse(rcv.srv.URL)
	require.NoError(t, err)
	// NewDeliverer is called directly, because newDeliverer lifts the guard.
	d := NewDeliverer(Deps{DB: e.db, Queue: e.queue, Logger: testenv.Logger(t)}, Config{})

	// The endpoints are stored by an Endpoints without the guard, as if they
	// were registered before it existed or a name changed its address.
	cases := []struct{ name, url string }{
		{"loopback address", rcv.srv.URL + "/hooks"},
		{"localhost name", "http://localhost:" + u.Port() + "/hooks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, dlv := newPendingDelivery(t, e, tc.url)

			err := d.Deliver(context.Background(), dlv.ID)
			_, retry := RetryDelay(err)
			require.True(t, retry, "want a RetryError, got %v", err)

			got := loadDelivery(t, e.db, dlv.ID)
			require.Equal(t, models.DeliveryPending, got.Status)
			require.Len(t, got.Attempts, 1)
			a := got.Attempts[0]
			require.Equal(t, ClassBlocked, a.ErrorClass)
			require.Nil(t, a.StatusCode)
			require.Contains(t, a.Error, "loopback")
			require.NotContains(t, a.Error, "/hooks", "the error shows the URL")
		})
	}
	require.Empty(t, rcv.received(), "the guard let a request through")
}

func TestCheckAddrEmbeddedAndAzure(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"::127.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:a00:1", "168.63.129.16"} {
		err := CheckAddr(netip.MustParseAddr(s))
		var be *BlockedAddressError
		require.True(t, errors.As(err, &be), "%s passed the guard", s)
	}
	require.NoError(t, CheckAddr(netip.MustParseAddr("::8.8.8.8")), "an embedded public address is allowed")
}
