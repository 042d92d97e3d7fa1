"""A file's bytes as text: UTF-8, or UTF-16/32 with a byte-order mark; never guessed. Shared by
the data formats and the YAML configs."""

from __future__ import annotations

import codecs
from pathlib import Path

from harness.errors import DataError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode(path: Path, data: bytes) -> str:
    """``data``, read from ``path``, as text; a DataError naming the first bad byte's line."""
    bom, encoding = next(((b, e) for b, e in _BOMS if data.startswith(b)), (b"", "utf-8"))
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        # utf-8-sig counts offsets after the BOM; the others include it.
        offset = err.start + (len(bom) if encoding == "utf-8-sig" else 0)
        line = data[:offset].count(b"\n") + 1
        raise DataError(
            path,
            f"not valid {encoding.upper()} text: byte 0x{data[offset]:02x} at offset "
            f"{offset} (line {line})",
            hint="re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT`",
        ) from None
