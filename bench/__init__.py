"""Benchmarks of Systolica (`make bench`; not part of `make test`).

Each benchmark is a function registered under a name (bench/registry.py) in a module of
bench/suites/ (every module there is imported by bench/run.py, so adding a benchmark means adding
one file). A benchmark returns rows; bench/results.py merges them, with the git commit, the
configurations named in the rows and the machine's load, into bench/results.json and renders
bench/results.md. `python -m bench.run --only NAME` runs some of them and keeps the others'
recorded sections.
"""
