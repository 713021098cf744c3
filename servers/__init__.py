"""Reference implementation of CPython 3.13's ``socketserver`` API.

This package is sockspec's executable specification of how a
``socketserver``-style server behaves.  It provides the same public names, class
hierarchy and observable behaviour as the standard-library module (it passes
CPython's own ``test_socketserver``, ``test_httpservers`` and ``test_xmlrpc``
when substituted for it), and runs on Python 3.8-3.13.  The harness's checks
refer to the contracts written in the docstrings here.

Layout (one concern per module):

``_base``
    ``BaseServer``: ``serve_forever()``/``shutdown()``, ``handle_request()``
    and the per-request hook pipeline.
``_sockets``
    ``TCPServer``, ``UDPServer``, ``UnixStreamServer``, ``UnixDatagramServer``.
``_threading`` / ``_forking``
    ``ThreadingMixIn`` / ``ForkingMixIn``: concurrent request processing.
``_compose``
    The ready-made ``Threading*``/``Forking*`` server classes.
``_handlers``
    ``BaseRequestHandler``, ``StreamRequestHandler``,
    ``DatagramRequestHandler``.

Cross-cutting guarantees (details in each hook's docstring):

* Per request obtained from ``get_request()``: ``verify_request()`` is called
  once; if it accepts, ``process_request()`` is called once, leading to exactly
  one ``finish_request()`` (which constructs the handler); and
  ``shutdown_request()`` -- which ends in ``close_request()`` -- is called
  exactly once, after the handler has returned, in whichever thread or process
  ran it.
* ``handle_error()`` is called only for ``Exception`` subclasses, from inside
  the ``except`` block, before the request is shut down.  ``SystemExit`` and
  ``KeyboardInterrupt`` are never swallowed: they propagate out of
  ``serve_forever()``/``handle_request()`` for synchronous servers and out of
  the handler thread for threading servers, and make a forked child exit with
  status 1.
* A handler's ``finish()`` runs whenever its ``setup()`` succeeded.
* ``server_close()`` of the mix-in servers (with the default
  ``block_on_close = True``) returns only after every non-daemon handler
  thread / every child process has finished.

Names that need ``os.fork`` (``ForkingMixIn`` and the ``Forking*`` servers) or
``socket.AF_UNIX`` (the ``Unix*`` servers) exist only where the platform has
them, and ``__all__`` lists exactly the names that exist, as in CPython.
"""

import os as _os
import socket as _socket

from ._base import BaseServer
from ._compose import ThreadingTCPServer, ThreadingUDPServer
from ._handlers import BaseRequestHandler, DatagramRequestHandler, StreamRequestHandler
from ._sockets import TCPServer, UDPServer
from ._threading import ThreadingMixIn

__all__ = [
    "BaseRequestHandler",
    "BaseServer",
    "DatagramRequestHandler",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "UDPServer",
]

if hasattr(_os, "fork"):
    from ._compose import ForkingTCPServer, ForkingUDPServer
    from ._forking import ForkingMixIn

    __all__ += ["ForkingMixIn", "ForkingTCPServer", "ForkingUDPServer"]

if hasattr(_socket, "AF_UNIX"):
    from ._compose import ThreadingUnixDatagramServer, ThreadingUnixStreamServer
    from ._sockets import UnixDatagramServer, UnixStreamServer

    __all__ += [
        "ThreadingUnixDatagramServer",
        "ThreadingUnixStreamServer",
        "UnixDatagramServer",
        "UnixStreamServer",
    ]

    if hasattr(_os, "fork"):
        from ._compose import ForkingUnixDatagramServer, ForkingUnixStreamServer

        __all__ += ["ForkingUnixDatagramServer", "ForkingUnixStreamServer"]
