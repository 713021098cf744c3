"""Run CPython regression tests with ``socketserver`` replaced by ``servers``.

Usage (from anywhere; the shim directory and the repository root must be on
``PYTHONPATH``, shim first)::

    PYTHONPATH=tests/shim:. python tests/shim/run_cpython_suite.py -u all test_socketserver

Before handing its arguments to CPython's regression-test driver
(``test.libregrtest``, i.e. what ``python -m test`` runs), in this same process,
it verifies that

* ``import socketserver`` yields the ``servers`` package of this repository,
* the stdlib consumers that import ``socketserver`` at module level
  (``http.server``, ``xmlrpc.server``, ``logging.config``) got it too,

and prints one ``sockspec-shim: ...`` line saying so.  It exits with status 3
(without running anything) if any check fails.
"""

import importlib
import os
import sys

# tests/cpython/shim/ -> the repository root, three levels up.
_REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
_EXPECTED_FILE = os.path.join(_REPO, "servers", "__init__.py")


def _verify() -> str:
    import socketserver

    import servers

    problems = []
    if socketserver is not servers:
        problems.append(f"socketserver is {socketserver.__file__}, not the servers package")
    if os.path.realpath(servers.__file__ or "") != os.path.realpath(_EXPECTED_FILE):
        problems.append(f"servers imported from {servers.__file__}, expected {_EXPECTED_FILE}")
    for consumer in ("http.server", "xmlrpc.server", "logging.config"):
        module = importlib.import_module(consumer)
        seen = vars(module).get("socketserver", sys.modules.get("socketserver"))
        if seen is not servers:
            problems.append(f"{consumer} sees socketserver from {seen!r}")
    if problems:
        for problem in problems:
            print(f"sockspec-shim: FAILED: {problem}", file=sys.stderr)
        sys.exit(3)
    return f"sockspec-shim: socketserver is servers ({servers.__file__}) on Python {sys.version}"


def main() -> None:
    print(_verify(), flush=True)
    from test.libregrtest.main import main as regrtest_main

    # Same as ``python -m test ARGS``, minus the optional re-exec with extra
    # interpreter options, so the tests run in this verified process.
    regrtest_main()


if __name__ == "__main__":
    main()
