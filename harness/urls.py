"""URLs with credentials in them (storage URLs, tracking URIs): shown without the password."""

from __future__ import annotations

from urllib.parse import unquote


def redact(url: str) -> str:
    """``url`` without its password, for messages: scheme://user:***@host/..."""
    head, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if sep and at and ":" in creds:
        return f"{head}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def scrub(text: str, url: str) -> str:
    """``text`` (an error from a library, say) with ``url``'s password taken out wherever it
    appears, spelled as in the URL or decoded."""
    _, sep, rest = url.partition("://")
    creds, at, _ = rest.rpartition("@")
    if not (sep and at and ":" in creds):
        return text
    password = creds.split(":", 1)[1]
    for secret in {password, unquote(password)}:
        if secret:
            text = text.replace(secret, "***")
    return text
