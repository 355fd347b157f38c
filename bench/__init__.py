"""Benchmarks of every datastore against its raw driver and the peers (issue 6).

Run ``python -m bench --help``; docs/benchmarks.rst explains the method.
"""
