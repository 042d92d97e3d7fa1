"""The adapters a user names (NAME, NAME@alias, NAME/version, or a run id) and where the
tracking store keeps their files."""

from __future__ import annotations

import re

from harness.errors import HarnessError
from harness.names import name_problem
from harness.tracking.gate import CHAMPION
from harness.tracking.store import client_for

RUN_ID = re.compile(r"[0-9a-f]{32}")
VERSION_URI = re.compile(r"models:/([^/@]+)(?:@([^/@]+)|/(\d+))")


def parse_ref(ref: str) -> str:
    """NAME, NAME@alias or NAME/version as a models:/ URI (NAME alone means @champion)."""
    if ref.startswith("models:/"):
        return ref
    name, at, alias = ref.partition("@")
    name, slash, version = name.partition("/")
    problem = _problem(name, alias=alias if at else None, version=version if slash else None)
    if problem:
        raise HarnessError(f"{ref!r} {problem}: give NAME@ALIAS (e.g. medquad-demo@champion), "
                           "NAME/VERSION (e.g. medquad-demo/3) or NAME (its @champion)")
    if at:
        return f"models:/{name}@{alias}"
    return f"models:/{name}/{version}" if slash else f"models:/{name}@{CHAMPION}"


def _problem(name: str, *, alias: str | None, version: str | None) -> str | None:
    if alias is not None and version is not None:
        return "gives both an alias and a version"
    if alias is not None and (not alias or name_problem(alias)):
        return f"has an alias {alias!r} that {name_problem(alias) or 'is empty'}"
    if version is not None and not (version.isdigit() and int(version) >= 1):
        return f"has a version {version!r}; versions are whole numbers from 1"
    problem = name_problem(name)
    return f"names a model that {problem}" if problem else None


def version_location(uri: str, store: str) -> str:
    """Where the model version ``uri`` (models:/NAME@ALIAS or models:/NAME/VERSION) keeps its
    files, asked of the registry at ``store``. Resolved here rather than by MLflow because its
    download of a models:/ URI reads the process-wide registry URI, which a library call must
    not change; another form of URI is returned as it is."""
    match = VERSION_URI.fullmatch(uri)
    if match is None:
        return uri
    name, alias, number = match.groups()
    client = client_for(store)
    version = client.get_model_version_by_alias(name, alias).version if alias else number
    location: str = client.get_model_version_download_uri(name, version)
    return location


def adapter_location(ref: str, store: str) -> str:
    """Where the adapter ``ref`` names keeps its files: a model version (NAME@alias,
    NAME/version, NAME), or a run id (its logged adapter model, or its `adapter` artifact)."""
    if not RUN_ID.fullmatch(ref):
        return version_location(parse_ref(ref), store)
    from harness.tracking.logged_model import adapter_model_id

    client = client_for(store)
    run = client.get_run(ref)
    model_id = adapter_model_id(client, run)
    if model_id is None:
        return f"{run.info.artifact_uri}/adapter"
    location: str = client.get_logged_model(model_id).artifact_location
    return location
