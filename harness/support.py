"""Helpers for scenarios that go beyond the context: timed calls, spans, children, descriptors,
and calls in a child's main thread (where signal handlers run).

These are the tools the built-in families use; they are public so that user
scenarios can use them too.  Implementations live in ``harness._support``
(fault injection, descriptors, background calls, children) and
``harness._checks`` (spans and event timing).
"""

from harness._checks.concurrency import handle_spans, handler_pids, max_overlap, request_ends
from harness._checks.timing import first_event, slack
from harness._runtime.handlers import Behaviour
from harness._support.background import Background, BackgroundClose
from harness._support.children import child_states, live_children, live_instances, wait_children
from harness._support.descriptors import (
    connect_starved,
    descriptor_count,
    no_free_descriptors,
    socket_descriptors,
)
from harness._support.faults import (
    FAIL_TAG,
    PASS_TAG,
    echo_rest,
    fail_script,
    fail_then_serve,
    pass_script,
    tagged_handler,
)
from harness._support.mainthread import ChildCall, in_main_thread

__all__ = [
    "FAIL_TAG",
    "PASS_TAG",
    "Background",
    "BackgroundClose",
    "Behaviour",
    "ChildCall",
    "child_states",
    "connect_starved",
    "descriptor_count",
    "echo_rest",
    "fail_script",
    "fail_then_serve",
    "first_event",
    "handle_spans",
    "handler_pids",
    "in_main_thread",
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
