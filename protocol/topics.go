package protocol

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

// CheckID reports whether s may be used as a game, server, tag, tag value,
// player or message id (protocol.md section 2): 1 to 128 bytes of
// [A-Za-z0-9._~:@=-]. The alphabet excludes every character MQTT gives a
// meaning ('/', '+', '#', NUL, a leading '$') and whitespace, so an id that
// passes is always exactly one topic level. It returns ErrEmptyID, ErrLongID or
// an error wrapping ErrBadIDChar.
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

// Scope is the audience level a topic addresses (protocol.md section 2).
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
// caller has checked them with CheckID.
func Base(prefix, game string, scope Scope, keys ...string) string {
	parts := make([]string, 0, 4+len(keys))
	parts = append(parts, prefix, game, string(scope))
	parts = append(parts, keys...)
	return strings.Join(parts, "/")
}

// Message returns the topic one message of a kind is published to under base:
// {base}/{kind}/{msg}. Each campaign owns its topics, so two campaigns never
// overwrite each other's retained messages.
func Message(base string, kind Kind, msg string) string {
	return base + "/" + string(kind) + "/" + msg
}

// DescriptorTopic returns the topic a game's descriptor is retained on:
// {prefix}/{game}/descriptor.
func DescriptorTopic(prefix, game string) string {
	return prefix + "/" + game + "/descriptor"
}

// ReceiptTopic returns the topic a player publishes its receipts to:
// {prefix}/{game}/receipts/{player}. Herald takes the game and the player from it.
func ReceiptTopic(prefix, game, player string) string {
	return prefix + "/" + game + "/receipts/" + player
}

// ownLevel is the topic level under the prefix where Herald keeps topics of its
// own. No game id can be "$herald" (CheckID refuses a '$'), so these never meet a
// game's topics, and no client's subscription covers them: they are in this
// package only so that every topic Herald spells is spelled here.
const ownLevel = "$herald"

// Sentinel returns the topic of Herald's retained-store sentinel:
// {prefix}/$herald/sentinel.
func Sentinel(prefix string) string {
	return prefix + "/" + ownLevel + "/sentinel"
}

// ReceiptsSubscription is the MQTT filter Herald consumes receipts with
// ($share/herald/{prefix}/+/receipts/+): a shared subscription, so that the
// broker hands each receipt to one replica.
func ReceiptsSubscription(prefix string) string {
	return "$share/herald/" + ReceiptTopic(prefix, "+", "+")
}

// Fence returns the topic prefix under which each replica's receipts
// connection finds its own fence topic ({prefix}/$herald/fence/{client id}):
// on stopping, it publishes a marker there and waits for it, to know that the
// broker has handed over every receipt it had routed to the replica. The
// README's broker ACL lets Herald read and write there.
func Fence(prefix string) string {
	return prefix + "/" + ownLevel + "/fence"
}

// Probe returns the topic a replica sends its sentinel probes to:
// {prefix}/$herald/probe/{replica}. replica must be a valid id (CheckID).
func Probe(prefix, replica string) string {
	return prefix + "/" + ownLevel + "/probe/" + replica
}
