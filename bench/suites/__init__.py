"""Benchmark modules: each registers its functions with bench.registry.benchmark."""
