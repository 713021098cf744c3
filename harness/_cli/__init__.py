"""The command line: argument parsing, progress output, scenario skeletons.

Python 3.10+ (controller only).  Nothing imports it but ``harness.__main__``.
"""
