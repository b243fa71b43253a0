"""Benchmark (`make bench`, ``python -m bench``), demo (`make demo`, ``python -m bench.demo``) and sandbox
(`make sandbox`, ``python -m bench.sandbox``).

All drive the installed ``story-liker`` CLI as separate processes against the project's local
Instagram double (``tests/double/``): no network, no Instagram account.
"""
