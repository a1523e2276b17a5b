// Package topics owns the MQTT topic contract of DESIGN section 3: which ids may
// appear in a topic and how topics are spelled. It is the one place that builds a
// topic, so that validated parts are the only thing that can ever reach the broker;
// segments (plans), the API (previews) and mqttout (publishing) all go through it.
package topics

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIDLen is the longest id, in bytes, that may appear as one topic level.
const MaxIDLen = 128

// Errors returned by CheckID; wrap-aware callers can match them with errors.Is.
var (
	ErrEmptyID   = errors.New("must not be empty")
	ErrLongID    = fmt.Errorf("must be at most %d bytes", MaxIDLen)
	ErrBadIDChar = errors.New("may contain only A-Z a-z 0-9 . _ ~ : @ = -")
)

// CheckID reports whether s may be used as a game, server, tag, tag value or player
// id: 1 to 128 bytes of [A-Za-z0-9._~:@=-]. The alphabet excludes every character
// MQTT gives a meaning ('/', '+', '#', NUL, a leading '$') and whitespace.
// It returns ErrEmptyID, ErrLongID or an error wrapping ErrBadIDChar.
func CheckID(s string) error {
	if s == "" {
		return ErrEmptyID
	}
	if len(s) > MaxIDLen {
		return ErrLongID
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return fmt.Errorf("byte %d (%q) is not allowed: %w", i, s[i], ErrBadIDChar)
		}
	}
	return nil
}

func idByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._~:@=-", c) >= 0
}

// Scope is the audience level a topic addresses.
type Scope string

// The audience scopes of the topic contract.
const (
	ScopeAll    Scope = "all"
	ScopeServer Scope = "server"
	ScopeTag    Scope = "tag"
	ScopePlayer Scope = "player"
)

// Base returns the topic base an audience subscribes to, without the kind and
// message levels: {prefix}/{game}/all, {prefix}/{game}/server/{server},
// {prefix}/{game}/tag/{tag}/{value} or {prefix}/{game}/player/{player}.
// keys holds the ids the scope needs (none, server, tag and value, player); the
// caller has validated them with CheckID.
func Base(prefix, game string, scope Scope, keys ...string) string {
	parts := make([]string, 0, 4+len(keys))
	parts = append(parts, prefix, game, string(scope))
	parts = append(parts, keys...)
	return strings.Join(parts, "/")
}

// Message returns the topic one message of a kind is published to under base:
// {base}/{kind}/{msg}. Each message owns its retained topic.
func Message(base, kind, msg string) string {
	return base + "/" + kind + "/" + msg
}

// ownLevel is the topic level under the prefix where Herald keeps topics of its
// own. No game id can be "$herald" (CheckID refuses a '$'), so these never meet a
// game's topics, and no game client's subscription covers them.
const ownLevel = "$herald"

// Sentinel returns the topic of Herald's retained-store sentinel:
// {prefix}/$herald/sentinel.
func Sentinel(prefix string) string {
	return prefix + "/" + ownLevel + "/sentinel"
}

// Probe returns the topic a replica sends its sentinel probes to:
// {prefix}/$herald/probe/{replica}. replica must be a valid id (CheckID).
func Probe(prefix, replica string) string {
	return prefix + "/" + ownLevel + "/probe/" + replica
}
