"""Benchmarks: throughput, baseline recompute, and detection accuracy on labelled streams."""
