// Package receipts is what Herald does with client receipts (docs/protocol.md
// section 7): it takes them from the broker's shared subscription through a
// bounded buffer (Ingester), writes them in batches that count each (send,
// player, event) once (Store), keeps them in day partitions that the scheduler
// leader creates ahead and drops past retention (Store.Maintain, Janitor), and
// answers the stats of campaigns and dispatches (Store.Stats).
package receipts
