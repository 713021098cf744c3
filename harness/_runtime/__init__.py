"""Case runtime: the context, instrumented servers, the event log, handlers, clients, swarms.

Python 3.7+ (runs in workers).  Imports only ``harness._model``.
"""
