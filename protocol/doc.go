// Package protocol is the client contract of docs/protocol.md, in Go, shared by
// Herald's server and its Go SDK (package client): the ids and topics of the
// contract, message kinds and the content of each kind with its validation,
// localized text, the envelope (encoding, decoding, size limit), receipts
// (encoding, parsing), the game descriptor and the subscriptions a client
// computes from it, and the rule language of filters with how a client
// evaluates one.
//
// It imports only the standard library and Herald's fielderr and valid (which
// import only the standard library), never pgx, paho or another Herald package
// that does, so that a game binary which links the SDK links nothing of the
// server. A test of the root package enforces that.
package protocol
