// Package protocol is the client contract of docs/protocol.md, shared by Herald's
// server and its Go SDK (package client): the rule language of filters and how a
// client evaluates one, the game descriptor and the subscriptions a client computes
// from it, the envelope as a client decodes it, receipts, and localized text.
//
// It imports only the standard library, never pgx, paho or another Herald package
// that does, so that a game binary which links the SDK links nothing of the server.
package protocol
