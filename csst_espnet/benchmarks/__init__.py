"""Benchmarks of model components against peer implementations (docs/benchmarks.md)."""
