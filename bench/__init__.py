"""Benchmarks: `make bench` prints one JSON line per figure, each against an in-run baseline."""
