"""Artifact names (pcaps) of cases: filesystem-safe and distinct for distinct ids."""

from __future__ import annotations

from harness._wire.capture import case_slug


def test_ids_differing_only_in_special_characters_get_distinct_names() -> None:
    ids = ["a.b[tcp-sync-x=1/2]", "a.b[tcp-sync-x=1 2]", "a.b[tcp-sync-x=1:2]"]
    slugs = {case_slug("stdlib", i) for i in ids}
    assert len(slugs) == len(ids)
    assert all(len(s) <= 150 and "/" not in s and " " not in s for s in slugs)


def test_names_are_stable() -> None:
    assert case_slug("stdlib", "a.b[tcp-sync]") == case_slug("stdlib", "a.b[tcp-sync]")
