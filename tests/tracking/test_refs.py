"""The adapters a user names: NAME, NAME@alias, NAME/version, each as a models:/ URI, and every
malformed one refused with what to give instead."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.tracking.refs import parse_ref


@pytest.mark.parametrize("ref, uri", [
    ("medquad-demo", "models:/medquad-demo@champion"),
    ("medquad-demo@challenger", "models:/medquad-demo@challenger"),
    ("medquad-demo/3", "models:/medquad-demo/3"),
    ("models:/x/1", "models:/x/1"),
])
def test_references_to_a_registered_adapter(ref: str, uri: str) -> None:
    assert parse_ref(ref) == uri


@pytest.mark.parametrize("ref, said", [
    ("m/-1", "has a version '-1'; versions are whole numbers from 1"),
    ("m/0", "versions are whole numbers from 1"),
    ("m/latest", "versions are whole numbers from 1"),
    ("m@", "has an alias '' that must not be empty"),
    ("m/2@champion", "gives both an alias and a version"),
    ("../m", "versions are whole numbers from 1"),
])
def test_a_malformed_reference_says_what_is_wrong_and_what_to_give(ref: str, said: str) -> None:
    with pytest.raises(HarnessError, match="give NAME@ALIAS") as info:
        parse_ref(ref)
    assert said in str(info.value)
