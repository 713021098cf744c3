"""Checks: structured findings about a finished or running case (behind ``harness.checks``).

Python 3.7+ (runs in workers).  Checks read what a ``CheckTarget`` offers (see
``harness._model.target``), so they depend on the model, not on the executor.
"""
