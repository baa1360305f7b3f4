"""Benchmarks: knowledge-base retrieval quality and search latency, written to ``bench/results/``."""
