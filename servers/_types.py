"""Type aliases shared by the server and handler modules.

The aliases are deliberately loose (``Any``-based): what a "request" or an
"address" is depends on the concrete server class, and the public API has to
accept everything CPython's ``socketserver`` accepts, including user-defined
server classes that return their own request objects from ``get_request()``.
The names exist so that signatures document *which* role a value plays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

#: What ``get_request()`` hands to the rest of the pipeline.  For stream servers
#: it is the connected ``socket.socket``; for datagram servers it is the pair
#: ``(payload: bytes, server_socket: socket.socket)``.
Request: TypeAlias = Any

#: A socket address as produced by ``accept()``/``recvfrom()``/``getsockname()``:
#: ``(host, port)`` for AF_INET, ``(host, port, flowinfo, scope_id)`` for AF_INET6,
#: ``str``/``bytes`` for AF_UNIX (possibly empty for unbound peers).
Address: TypeAlias = Any

#: The ``RequestHandlerClass`` given to a server: anything callable as
#: ``factory(request, client_address, server)``.  Its return value is ignored;
#: all of the work happens during the call.
# A string so that workers on Python < 3.10 can import this module.
HandlerFactory: TypeAlias = "Callable[..., object]"
