"""URLs: credentials in them (storage URLs, tracking URIs) shown without the password, and the
MLflow UI routes the harness links to."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MIN_SECRET = 4
"""Shorter passwords are not searched for inside other text (every `a` would go); the URL's
own spelling of them is replaced all the same."""


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password if "://" in url else None
    except ValueError:  # a malformed port, say
        return None


def _origin(url: str) -> str:
    """scheme://user:password@host:port, the part of ``url`` before its path."""
    head, _, rest = url.partition("://")
    return f"{head}://{rest.partition('/')[0]}"


def redact(url: str) -> str:
    """``url`` without its password, for messages: scheme://user:***@host/..."""
    if not _password(url):
        return url
    origin = _origin(url)
    head, _, netloc = origin.partition("://")
    creds, _, host = netloc.rpartition("@")
    return f"{head}://{creds.split(':', 1)[0]}:***@{host}{url[len(origin):]}"


def scrub(text: str, url: str) -> str:
    """``text`` (an error from a library, say) with ``url``'s password taken out wherever it
    appears: in the URL's own spelling, and alone, as written or decoded."""
    password = _password(url)
    if not password:
        return text
    text = text.replace(_origin(url), _origin(redact(url)))
    for secret in {password, unquote(password)}:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, "***")
    return text


WORKFLOW = "machine_learning"
"""The MLflow UI's "Model training" switch as a URL parameter: MLflow 3.17's UI follows the
switch (remembered per browser, GenAI at first) before the experiment's kind, so every link the
harness writes sets it."""


def ui_route(experiment_id: str, run_id: str | None = None) -> str:
    """The MLflow UI's own relative route to an experiment's runs table, or to one run: it
    works behind any host, port or proxy prefix the UI is served under."""
    where = f"#/experiments/{experiment_id}/runs"
    return f"{where}/{run_id}?workflowType={WORKFLOW}" if run_id else \
        f"{where}?workflowType={WORKFLOW}"

