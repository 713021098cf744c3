"""A socketserver module whose threading servers use ``pooled-processmixin``'s pool.

``pooledProcessMixin.PooledProcessMixIn`` (PyPI ``pooled-processmixin`` 0.0.1)
replaces ``ThreadingMixIn``: a pool of processes forked on the first request,
each running a pool of threads that call ``get_request()`` themselves.  Every
other name is the standard library's.  Adapter choices, none a fix:

* ``_kill = False``: the library's default ``shutdown()`` sends SIGTERM to the
  *parent* of the serving process (``os.kill(os.getppid(), SIGTERM)``), which
  would kill the harness's supervisor, not the server;
* ``_process_n = 2`` and ``_thread_n = 8``: a pool sized for a 2-core machine
  (the default is 64 threads in each of ``cpu_count()`` processes).
"""

from __future__ import annotations

from socketserver import *  # noqa: F403 - the module re-exports the whole API
from socketserver import TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer
from socketserver import __all__ as __all__  # the same names: the classes below replace some

from pooledProcessMixin import PooledProcessMixIn


class ThreadingMixIn(PooledProcessMixIn):
    """The pool mixin under the name the catalogue composes with."""

    _kill = False
    _process_n = 2
    _thread_n = 8


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    """TCP served by the pool."""


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    """UDP served by the pool."""


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    """Unix stream served by the pool."""


class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
    """Unix datagram served by the pool."""
