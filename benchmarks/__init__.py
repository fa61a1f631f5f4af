"""Benchmarks: each compares swarm against a baseline in the same run and writes results/NAME.json."""
