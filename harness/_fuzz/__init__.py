"""Optional engine: property-based fuzzing with Hypothesis (behind ``harness.fuzz``).

Python 3.7+ (runs in workers).
"""
