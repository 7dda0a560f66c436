//! Benchmarks live in benches/; the end-to-end harness is `benches/e2e`.
