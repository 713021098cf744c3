"""Execution, worker side: discovery, the case executor, post-check binding, the worker loop.

Python 3.7+: this is what a worker of another interpreter imports.
"""
