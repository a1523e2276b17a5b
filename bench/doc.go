// Package bench is `make bench`: it measures Herald against the raw limits of
// its broker and its database. Each scenario drives a built `herald serve`
// process (on a private Mosquitto and a fresh Postgres database) the way an
// operator or a game would, and next to it, in the same run and on the same
// broker or database, the plainest program that does the same work (a bare
// paho publisher, a bare CopyFrom), so that a figure is read as a ratio to
// what the machine allows at that moment rather than as an absolute number
// on a noisy, shared machine.
//
// The scenarios are tests: TestBench runs them at full size when BENCH=1
// (`make bench`; BENCH_SCALE, BENCH_RUNS and BENCH_ONLY tune it) and prints
// one table; TestSmoke runs each at a tiny size in the ordinary test suite,
// checking only that it produced its figures and lost nothing, so that the
// programs cannot rot. BENCHMARKS.md holds a run's results.
package bench
