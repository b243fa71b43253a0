"""Benchmark (`make bench`, ``python -m bench``) and demo (`make demo`, ``python -m bench.demo``).

Both drive the installed ``story-liker`` CLI as separate processes against the project's local
Instagram double (``tests/double/``): no network, no Instagram account.
"""
