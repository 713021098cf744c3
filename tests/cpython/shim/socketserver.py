"""Drop-in shim: ``import socketserver`` returns the ``servers`` package.

Usage: put this directory *first* on the module search path and the repository
root after it, e.g.::

    PYTHONPATH=tests/shim:. python -m test -u all test_socketserver

``PYTHONPATH`` entries precede the standard library, so the import system
finds this file instead of the stdlib ``socketserver.py``.  While this module
body runs it imports ``servers`` and then replaces its own ``sys.modules``
entry with that package.  The import machinery returns whatever
``sys.modules['socketserver']`` holds once the body has finished, so every
``import socketserver`` / ``from socketserver import X`` in the process -- the
CPython test suites, ``http.server``, ``xmlrpc.server``, ``logging.config``,
``wsgiref`` ... -- receives ``servers`` itself: the very same class objects,
not copies or subclasses.  ``socketserver.__name__`` is therefore ``"servers"``
and ``socketserver.__file__`` is ``servers/__init__.py``.

Private names: none are needed at module level.  The only private attribute
CPython's suites touch is the per-instance ``server._threads`` (``len()`` of it,
in ``test_socketserver.MiscTestCase.test_threads_reaped``), which ``servers``
provides itself.

One adjustment is made: ``test_socketserver.MiscTestCase.test_all`` derives
the expected ``__all__`` from the public objects whose ``__module__`` equals the
literal ``"socketserver"``.  The public classes are therefore relabelled with
``__module__ = "socketserver"`` -- which is also where ``pickle`` will now find
them, since ``sys.modules["socketserver"]`` is the package.  This only affects
processes that import the shim.

If the environment variable ``SOCKSPEC_SHIM_LOG`` names a file, one line
``<pid> <servers file>`` is appended to it, so that a test driving a
subprocess can prove that the shim (and not the stdlib module) was loaded.
"""

import os
import sys

import servers
from servers import *  # noqa: F403  (makes the file a plain re-export if loaded by path)

for _name in servers.__all__:
    getattr(servers, _name).__module__ = "socketserver"

_log = os.environ.get("SOCKSPEC_SHIM_LOG")
if _log:
    with open(_log, "a", encoding="utf-8") as _fh:
        _fh.write(f"{os.getpid()} {servers.__file__}\n")

sys.modules[__name__] = servers
