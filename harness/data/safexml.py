"""The one way the harness parses XML: lxml, hardened.

No entity resolution, no network, no DTD loading, no huge trees, and any document that carries a
DOCTYPE is refused before the parser sees it: DTDs are where entity expansion (billion laughs,
quadratic blow-up) and external entities (local files, URLs) live, and MedQuAD has none.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from lxml import etree

from harness.errors import DataError

MAX_XML_BYTES = 64 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!\s*doctype", re.IGNORECASE)
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        collect_ids=False,
    )


def has_doctype(data: bytes) -> bool:
    """True if a DOCTYPE declaration appears, in an 8-bit or a wide (UTF-16/32) encoding."""
    if _DOCTYPE.search(data):
        return True
    wide = data.startswith(_WIDE_BOMS) or b"\x00" in data[:4]
    if wide:
        # Wide text: drop the NUL bytes of ASCII characters and look again.
        return bool(_DOCTYPE.search(data.replace(b"\x00", b"")))
    return False


def parse_xml_bytes(path: Path, data: bytes) -> etree._Element:
    """The root element of ``data``, or a DataError naming ``path`` and the reason."""
    _check_size(path, len(data))
    if has_doctype(data):
        raise DataError(path, "refused: the document has a DOCTYPE declaration (DTDs and "
                        "entities are never processed, for safety)",
                        hint="remove the <!DOCTYPE ...> declaration; MedQuAD files have none")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as err:
        raise DataError(path, f"not well-formed XML: {err.msg or err}") from None
    if root.getroottree().docinfo.doctype:
        raise DataError(path, "refused: the document has a DOCTYPE declaration")
    return root


def parse_xml_file(path: Path) -> etree._Element:
    try:
        _check_size(path, path.stat().st_size)
        data = path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read the file: {err.strerror or err}") from err
    return parse_xml_bytes(path, data)


def _check_size(path: Path, size: int) -> None:
    if size > MAX_XML_BYTES:
        raise DataError(path, f"XML file of {size / 1024**2:.0f} MiB is over the "
                        f"{MAX_XML_BYTES // 1024**2} MiB limit", hint="split it into files")
