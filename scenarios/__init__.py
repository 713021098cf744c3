"""Built-in scenario modules, one behaviour family each.

Drop a module in here (or in a directory given with ``--scenarios``) and mark
its functions with ``@harness.scenario``: discovery finds them.
"""
