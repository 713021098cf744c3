"""Helpers shared by the project's tests, importable as ``helpers`` (``pythonpath = tests``).

Tests import what they need from here, never from ``conftest`` (pytest advises
against importing conftest files); ``conftest.py`` only turns some of these into
fixtures.
"""

from pathlib import Path

#: The repository's root directory.
ROOT = Path(__file__).resolve().parents[2]
