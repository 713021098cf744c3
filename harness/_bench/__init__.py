"""Benchmarks of sockspec itself and of the reference servers (``python -m harness bench``).

Python 3.10+ (controller only).
"""
