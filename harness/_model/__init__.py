"""Model: records, errors, settings, variants, the lifecycle model and the scenario declaration.

Python 3.7+ (runs in workers of old interpreters); no I/O, no threads, no sockets.
Imports nothing else from ``harness``.
"""
