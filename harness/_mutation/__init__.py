"""Mutation testing of real implementations: the catalogue's power, measured.

``python -m harness mutate`` makes every mutant of an implementation's source
that an established engine's operators (cosmic-ray's, through its API) give,
selects for each the cases that execute the mutated line (coverage, one
context per case), judges it with the harness and reports a score per file
with every survivor, minus the mutants ``mutation/equivalent.toml`` proves
equivalent.

Python 3.10+ (controller only); needs the ``mutation`` extra (cosmic-ray, coverage).
"""
