"""Benchmarks: `make bench` runs every bench/bench_*.py module and prints one line per figure."""
