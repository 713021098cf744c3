"""Support for scenarios: fault injection, descriptor accounting, timed calls, children.

Python 3.7+ (runs in workers); public through ``harness.support``.
"""
