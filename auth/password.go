package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/outposthq/outpost"
)

// Password rules. Length is the only composition rule, as current
// guidance for memorized secrets advises.
const (
	MinPasswordLength = 12   // characters
	MaxPasswordBytes  = 1024 // bytes, to bound the cost of hashing
)

// argon2id parameters of new hashes: 19 MiB of memory, 2 passes, 1 lane,
// the minimum that OWASP's password storage guidance gives for argon2id.
// Stored hashes carry their own parameters, so raising these rehashes each
// password at its next sign-in.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// hashSlots bounds how many passwords are hashed at once, so that a burst
// of sign-ins cannot take argonMemory each without limit.
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// ValidatePassword returns a FieldError at field when password breaks the
// rules. The error never includes the password.
func ValidatePassword(field, password string) error {
	switch {
	case !utf8.ValidString(password):
		return &outpost.FieldError{Field: field, Message: "password is not valid UTF-8"}
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return &outpost.FieldError{Field: field,
			Message: fmt.Sprintf("password is too short; use at least %d characters, such as a passphrase of several words", MinPasswordLength)}
	case len(password) > MaxPasswordBytes:
		return &outpost.FieldError{Field: field,
			Message: fmt.Sprintf("password is too long; use at most %d bytes", MaxPasswordBytes)}
	case strings.TrimSpace(password) == "":
		return &outpost.FieldError{Field: field, Message: "password is only spaces"}
	}
	return nil
}

// HashPassword returns the argon2id hash of password in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$salt$hash.
func HashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never returns an error
	p := argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}
	key := p.key(password, salt, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// VerifyPassword reports whether password matches encoded, a hash from
// HashPassword, and whether encoded should be replaced because its
// parameters are weaker than those of new hashes.
func VerifyPassword(encoded, password string) (ok, rehash bool, err error) {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, false, err
	}
	got := p.key(password, salt, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	rehash = p.memory < argonMemory || p.time < argonTime || p.threads < argonThreads
	return ok, rehash, nil
}

// dummyHash is verified when a sign-in names no usable agent, so that the
// response takes as long as for a wrong password and does not reveal which
// email addresses belong to agents.
var dummyHash = HashPassword("outpost-dummy-password")

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func (p argonParams) key(password string, salt []byte, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, keyLen)
}

var errMalformedHash = errors.New("malformed password hash")

func parseHash(encoded string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errMalformedHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil ||
		p.memory == 0 || p.time == 0 || p.threads == 0 {
		return p, nil, nil, errMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, errMalformedHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return p, nil, nil, errMalformedHash
	}
	return p, salt, key, nil
}
