package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outposthq/outpost"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	hash := HashPassword("correct horse battery staple")
	require.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$"), hash)
	require.NotEqual(t, hash, HashPassword("correct horse battery staple"), "each hash has its own salt")

	ok, rehash, err := VerifyPassword(hash, "correct horse battery staple")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash)

	ok, _, err = VerifyPassword(hash, "correct horse battery stapl")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestVerifyPasswordWeakerParameters(t *testing.T) {
	t.Parallel()
	ok, rehash, err := VerifyPassword(weakHash("an older passphrase"), "an older passphrase")
	require.NoError(t, err)
	require.True(t, ok, "a hash is verified with its own parameters")
	require.True(t, rehash, "weaker parameters ask for a new hash")
}

func TestVerifyPasswordMalformed(t *testing.T) {
	t.Parallel()
	good := HashPassword("correct horse battery staple")
	parts := strings.Split(good, "$")
	for name, encoded := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuu5Kd0rGqYq0Jq0Zq0Zq0Zq0Zq0Zq0Zq",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"other version":  strings.Replace(good, "v=19", "v=16", 1),
		"zero memory":    strings.Replace(good, "m=19456", "m=0", 1),
		"bad salt":       strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"empty key":      strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], ""}, "$"),
		"missing fields": strings.Join(parts[:4], "$"),
	} {
		_, _, err := VerifyPassword(encoded, "correct horse battery staple")
		require.ErrorIs(t, err, errMalformedHash, name)
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		password string
		message  string
	}{
		{"eleven char", "at least 12 characters"},
		{strings.Repeat("é", 11), "at least 12 characters"},
		{strings.Repeat(" ", 12), "only spaces"},
		{strings.Repeat("x", MaxPasswordBytes+1), "at most 1024 bytes"},
		{"bad \xff utf-8 bytes", "not valid UTF-8"},
	} {
		err := ValidatePassword("body.password", tc.password)
		var fe *outpost.FieldError
		require.True(t, errors.As(err, &fe), "%q", tc.password)
		require.Equal(t, "body.password", fe.Field)
		require.Contains(t, fe.Message, tc.message)
		require.Nil(t, fe.Value, "the error never carries the password")
	}
	require.NoError(t, ValidatePassword("body.password", "twelve chars"))
	require.NoError(t, ValidatePassword("body.password", strings.Repeat("é", 12)), "length counts characters, not bytes")
}

func TestCSRFToken(t *testing.T) {
	t.Parallel()
	a, b := "ops_"+strings.Repeat("A", 43), "ops_"+strings.Repeat("B", 43)
	require.Equal(t, CSRFToken(a), CSRFToken(a))
	require.NotEqual(t, CSRFToken(a), CSRFToken(b))
	require.True(t, ValidCSRFToken(a, CSRFToken(a)))
	require.False(t, ValidCSRFToken(a, CSRFToken(b)))
	require.False(t, ValidCSRFToken(a, ""))
	require.NotContains(t, CSRFToken(a), a[4:], "the token does not reveal the session token")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{IdleTimeout: DefaultIdleTimeout, AbsoluteTimeout: DefaultAbsoluteTimeout}.Validate())
	require.ErrorContains(t, Config{IdleTimeout: 30e9, AbsoluteTimeout: DefaultAbsoluteTimeout}.Validate(), "shorter than 1m0s")
	require.ErrorContains(t, Config{IdleTimeout: DefaultAbsoluteTimeout, AbsoluteTimeout: DefaultIdleTimeout}.Validate(), "shorter than the idle timeout")
}

// BenchmarkVerifyPassword measures one password check, the CPU cost of a
// sign-in; BENCHMARKS.md records the result.
func BenchmarkVerifyPassword(b *testing.B) {
	hash := HashPassword("correct horse battery staple")
	for b.Loop() {
		if _, _, err := VerifyPassword(hash, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPasswordParallel measures password checks from many
// goroutines at once, which hashSlots bounds.
func BenchmarkVerifyPasswordParallel(b *testing.B) {
	hash := HashPassword("correct horse battery staple")
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := VerifyPassword(hash, "correct horse battery staple"); err != nil {
				b.Error(err)
			}
		}
	})
}
