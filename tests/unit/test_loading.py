"""Loading implementations: specs, probing, and one-line errors."""

from __future__ import annotations

import socketserver
import sys
from pathlib import Path

import pytest

from harness import LoadError, load_implementation, probe_features


def test_stdlib_and_reference_load_with_their_features() -> None:
    stdlib = load_implementation("stdlib")
    reference = load_implementation("reference")
    assert stdlib.module is socketserver
    assert reference.module.__name__ == "servers"
    assert {"ThreadingMixIn", "ForkingMixIn", "ForkingUnixStreamServer"} <= reference.features
    assert ("allow_reuse_port" in stdlib.features) == (sys.version_info >= (3, 11))
    assert ("ForkingUnixStreamServer" in stdlib.features) == (sys.version_info >= (3, 12))


def test_unknown_module_names_the_closest_match() -> None:
    with pytest.raises(
        LoadError, match=r"unknown implementation 'socketserverr'.*did you mean 'socketserver'"
    ):
        load_implementation("socketserverr")


def test_path_is_loaded_under_a_private_name(tmp_path: Path) -> None:
    path = tmp_path / "impl.py"
    path.write_text("from socketserver import *\nfrom socketserver import BaseServer\n")
    impl = load_implementation(str(path))
    assert impl.module.__name__.startswith("_sockspec_impl_")
    assert sys.modules["socketserver"] is socketserver
    assert impl.get("TCPServer") is socketserver.TCPServer


def test_module_missing_classes_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "partial.py"
    path.write_text("class BaseServer: pass\nclass TCPServr: pass\n")
    with pytest.raises(
        LoadError,
        match=r"lacks BaseRequestHandler, TCPServer or UDPServer.*did you mean 'TCPServr'",
    ):
        load_implementation(str(path))


def test_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def oops(:\n")
    with pytest.raises(LoadError) as info:
        load_implementation(str(path))
    assert "SyntaxError" in str(info.value) and "\n" not in str(info.value)


def test_probe_reports_missing_optional_classes() -> None:
    class Fake:
        BaseServer = type("BaseServer", (), {"service_actions": lambda self: None})
        TCPServer = type("TCPServer", (), {})

    features = probe_features(Fake)  # type: ignore[arg-type]
    assert "service_actions" in features
    assert "ThreadingMixIn" not in features and "allow_reuse_port" not in features
