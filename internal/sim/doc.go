// Package sim is `herald sim`: it simulates game clients that connect through
// the Go SDK's per-player logic (client.Session), receive, filter, acknowledge
// and count what Herald sends, so that an operator can load-test a broker and
// Herald's fan-out, and check who gets what, without a game.
//
// It is a package of its own, not part of main, so that tests run a simulation
// in-process and watch it while it runs (Sim.Snapshot), and so that what only
// the simulator needs (attribute spreads, players multiplexed over shared MQTT
// connections, latency percentiles) stays out of the SDK that games link.
package sim
