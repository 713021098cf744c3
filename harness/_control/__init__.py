"""Execution, controller side: supervisor, runner, interpreter agents, expectations, history.

Python 3.10+ (controller only).  Starts workers; never imports scenario or implementation code
itself.
"""
