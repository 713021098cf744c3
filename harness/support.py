"""Helpers for scenarios that go beyond the context: timed calls, spans, children, descriptors.

These are the tools the built-in families use; they are public so that user
scenarios can use them too.  Implementations live in private modules.
"""

from ._checks_concurrency import (
    BackgroundClose,
    child_states,
    handle_spans,
    handler_pids,
    live_children,
    live_instances,
    max_overlap,
    request_ends,
    wait_children,
)
from ._checks_lifecycle import (
    FAIL_TAG,
    PASS_TAG,
    connect_starved,
    descriptor_count,
    echo_rest,
    fail_script,
    fail_then_serve,
    no_free_descriptors,
    pass_script,
    socket_descriptors,
    tagged_handler,
)
from ._checks_timing import Background, first_event, slack
from ._handlers import Behaviour

__all__ = [
    "FAIL_TAG",
    "PASS_TAG",
    "Background",
    "BackgroundClose",
    "Behaviour",
    "child_states",
    "connect_starved",
    "descriptor_count",
    "echo_rest",
    "fail_script",
    "fail_then_serve",
    "first_event",
    "handle_spans",
    "handler_pids",
    "live_children",
    "live_instances",
    "max_overlap",
    "no_free_descriptors",
    "pass_script",
    "request_ends",
    "slack",
    "socket_descriptors",
    "tagged_handler",
    "wait_children",
]
