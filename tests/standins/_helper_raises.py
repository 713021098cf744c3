"""A helper module of the ``raises_in_helper`` library: its pool mixin.

``shutdown()`` reads state that only the first request creates, as
``pooledProcessMixin.PooledProcessMixIn`` does with ``_keep_running``.
"""

from __future__ import annotations

from typing import Any


class LazyPoolMixIn:
    def shutdown(self: Any) -> None:
        self._keep_running.value = 0  # AttributeError before the first request
