"""Adapters presenting real third-party socketserver libraries as the socketserver API.

``tox -e thirdparty`` runs the catalogue against each (see ``expectations/thirdparty/``).
"""
