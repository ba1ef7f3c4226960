"""Benchmarks: bare Django vs OTel vs OTel + this bridge vs sentry-sdk (``make bench``).

Every measured configuration runs in its own subprocess; ``python -m benchmarks`` alternates
them over several rounds and reports medians. ``BENCH_QUICK=1`` is the smoke-test size.
"""
