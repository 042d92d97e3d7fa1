"""The MedQuAD XML entry points are hardened against hostile XML.

Every attack is fed through every entry point: ``parse_xml_bytes``, ``parse_xml_file``,
``load_medquad``, ``load_dataset`` (on the file and on a directory holding it next to a good
document) and ``harness data check`` run as a real subprocess, with ``--json`` and without. Each
attack comes with a positive control: an unhardened lxml parser really does leak the secret (or
reach the network), so a passing test means the harness defended, not that the fixture was inert.
"""

from __future__ import annotations

import base64
import codecs
import dataclasses
import json
import os
import secrets
import socket
import socketserver
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from harness.config import DataConfig
from harness.data.load import Dataset, load_dataset
from harness.data.medquad import MedquadOptions, load_medquad
from harness.data.records import Problem, Record
from harness.data.safexml import parse_xml_bytes, parse_xml_file
from harness.errors import DataError

ROOT = Path(__file__).resolve().parents[2]

GOOD_QUESTION = "What is (are) Example Syndrome ?"
GOOD_ANSWER = "Example syndrome is a rare condition."


# ---------------------------------------------------------------------------------------------
# Building documents


def medquad_xml(answer: str = GOOD_ANSWER, *, doc_id: str = "0000001", extra: str = "") -> str:
    """A MedQuAD-shaped document (no prolog) whose single answer is ``answer``."""
    return (
        f'<Document id="{doc_id}" source="GARD" url="https://example.org/{doc_id}"{extra}>'
        "<Focus>Example Syndrome</Focus>"
        "<QAPairs><QAPair pid=\"1\">"
        f'<Question qid="{doc_id}-1" qtype="information">{GOOD_QUESTION}</Question>'
        f"<Answer>{answer}</Answer>"
        "</QAPair></QAPairs></Document>"
    )


def _utf7_run(text: str) -> str:
    """``text`` as one UTF-7 base64 run: no ASCII byte of it survives in the encoded file."""
    return "+" + base64.b64encode(text.encode("utf-16-be")).decode("ascii").rstrip("=") + "-"


def encode(text: str, how: str) -> bytes:
    """The document ``text`` with an XML declaration, in the encoding ``how``."""
    if how == "utf-8":
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode("utf-8")
    if how == "utf-16-le-bom":
        decl = '<?xml version="1.0" encoding="UTF-16"?>\n'
        return codecs.BOM_UTF16_LE + (decl + text).encode("utf-16-le")
    if how == "utf-16-be-bom":
        decl = '<?xml version="1.0" encoding="UTF-16"?>\n'
        return codecs.BOM_UTF16_BE + (decl + text).encode("utf-16-be")
    if how == "utf-16-le-no-bom":
        return ('<?xml version="1.0" encoding="UTF-16LE"?>\n' + text).encode("utf-16-le")
    if how == "utf-32-bom":
        decl = '<?xml version="1.0" encoding="UTF-32"?>\n'
        return codecs.BOM_UTF32_LE + (decl + text).encode("utf-32-le")
    if how == "utf-7-hidden":
        # The DOCTYPE keyword itself is base64-encoded, so no byte pattern can spot it: only the
        # parser's own settings and the post-parse check stand between it and the DTD.
        assert text.startswith("<!DOCTYPE")
        hidden = _utf7_run("<!DOCTYPE") + text[len("<!DOCTYPE"):]
        return ('<?xml version="1.0" encoding="UTF-7"?>\n' + hidden).encode("ascii")
    raise AssertionError(how)


ENCODINGS = ["utf-8", "utf-16-le-bom", "utf-16-be-bom", "utf-16-le-no-bom", "utf-32-bom",
             "utf-7-hidden"]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@dataclasses.dataclass(frozen=True)
class Secret:
    token: str
    path: Path
    attacker_dtd: Path
    """An external DTD (not itself secret) that pulls the secret into an entity ``leak`` and
    into a default value of the Document's ``source`` attribute."""


@pytest.fixture
def secret(tmp_path: Path) -> Secret:
    token = f"SECRET-{secrets.token_hex(16)}"
    path = write(tmp_path / "private" / "secret.txt", token + "\n")
    dtd = write(tmp_path / "attacker" / "attacker.dtd", (
        f'<!ENTITY % file SYSTEM "{path.as_uri()}">\n'
        "<!ENTITY % wrap \"<!ENTITY leak '%file;'>\">\n%wrap;\n"
        "<!ENTITY % wrap2 \"<!ATTLIST Document source CDATA '%file;'>\">\n%wrap2;\n"))
    return Secret(token, path, dtd)


def file_attacks(s: Secret) -> dict[str, str]:
    """Documents that read ``s.path`` when parsed by a careless parser."""
    return {
        "external_entity": f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{s.path.as_uri()}">]>'
        + medquad_xml("&xxe;"),
        "parameter_entity": f'<!DOCTYPE Document [<!ENTITY % ext SYSTEM '
        f'"{s.attacker_dtd.as_uri()}"> %ext;]>' + medquad_xml("&leak;"),
        "external_dtd": f'<!DOCTYPE Document SYSTEM "{s.attacker_dtd.as_uri()}">'
        + medquad_xml("&leak;"),
        # The document has no source attribute: the DTD's default would fill it in.
        "external_dtd_attribute_default": f'<!DOCTYPE Document SYSTEM '
        f'"{s.attacker_dtd.as_uri()}">' + medquad_xml().replace(' source="GARD"', ""),
    }


def unsafe_parse(data: bytes) -> bytes:
    """What a careless parser makes of ``data``: the positive control for every attack."""
    parser = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=False,
                             attribute_defaults=True, huge_tree=True)
    root = etree.fromstring(data, parser)
    root.getroottree().xinclude()
    return etree.tostring(root, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Running every entry point


def error_text(err: BaseException) -> str:
    """Everything an exception could show a user: messages, args, chained errors, traceback."""
    parts: list[str] = ["".join(traceback.format_exception(err))]
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *(str(a) for a in current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def dump(records: Sequence[Record], problems: Sequence[Problem]) -> str:
    """Records and problems as text, every field included."""
    rows: list[Any] = [dataclasses.asdict(r) for r in records]
    rows += [p.as_dict() for p in problems]
    return json.dumps(rows, ensure_ascii=False)


def file_entry_points(path: Path) -> list[tuple[str, Callable[[], object]]]:
    """Every Python entry point that reads the single XML file ``path``."""
    return [
        ("parse_xml_bytes", lambda: parse_xml_bytes(path, path.read_bytes())),
        ("parse_xml_file", lambda: parse_xml_file(path)),
        ("load_medquad", lambda: load_medquad(path, MedquadOptions())),
        ("load_dataset", lambda: load_dataset(DataConfig(path=str(path), format="medquad"))),
        ("load_dataset_auto", lambda: load_dataset(DataConfig(path=str(path)))),
    ]


def assert_rejected_everywhere(path: Path, *, secret_token: str | None = None) -> None:
    """Every Python entry point raises a DataError naming ``path`` (and never the secret)."""
    for name, attempt in file_entry_points(path):
        with pytest.raises(DataError) as info:
            attempt()
        err = info.value
        assert err.path == str(path), name
        assert str(path) in str(err), name
        if secret_token is not None:
            assert secret_token not in error_text(err), name


def load_dir(path: Path) -> Dataset:
    return load_dataset(DataConfig(path=str(path), format="medquad"))


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``harness data check ARGS`` in a fresh interpreter, as a user would run it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "250"
    return subprocess.run(
        [sys.executable, "-m", "harness", "data", "check", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", check=False)


def assert_cli_refuses_file(path: Path, *, secret_token: str | None = None) -> None:
    """On a single hostile file the CLI exits 2 with a one-line error naming the file."""
    for flags in (["--json"], []):
        proc = run_cli(path, *flags)
        assert proc.returncode == 2, (flags, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("harness: error: ")
        assert str(path) in proc.stderr
        assert proc.stdout == ""
        if secret_token is not None:
            assert secret_token not in proc.stdout + proc.stderr


def cli_json(path: Path) -> dict[str, Any]:
    proc = run_cli(path, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def good_document(directory: Path) -> Path:
    return write(directory / "0000001.xml", encode(medquad_xml(), "utf-8"))


# ---------------------------------------------------------------------------------------------
# External entities and DTDs reading local files


FILE_ATTACKS = ["external_entity", "parameter_entity", "external_dtd",
                "external_dtd_attribute_default"]


@pytest.mark.parametrize(("attack", "how"), [
    *((attack, how) for attack in FILE_ATTACKS for how in ENCODINGS[:-1]),
    *((attack, "utf-7-hidden") for attack in FILE_ATTACKS)])
def test_local_file_xxe_is_refused_and_never_leaks(
    tmp_path: Path, secret: Secret, attack: str, how: str
) -> None:
    data = encode(file_attacks(secret)[attack], how)
    # Positive control: a careless parser does read the secret from this very document.
    assert secret.token.encode() in unsafe_parse(data)

    bad = write(tmp_path / "corpus" / "1_GARD_QA" / "evil.xml", data)
    assert_rejected_everywhere(bad, secret_token=secret.token)
    assert_cli_refuses_file(bad, secret_token=secret.token)


def test_local_file_xxe_refusal_says_why(tmp_path: Path, secret: Secret) -> None:
    bad = write(tmp_path / "evil.xml", encode(file_attacks(secret)["external_entity"], "utf-8"))
    with pytest.raises(DataError) as info:
        load_medquad(bad, MedquadOptions())
    assert "DOCTYPE" in info.value.what
    assert info.value.hint is not None


@pytest.mark.parametrize("attack", FILE_ATTACKS)
def test_hostile_file_in_a_directory_is_reported_and_the_good_one_loaded(
    tmp_path: Path, secret: Secret, attack: str
) -> None:
    corpus = tmp_path / "corpus" / "1_GARD_QA"
    good = good_document(corpus)
    bad = write(corpus / "0000002.xml", encode(file_attacks(secret)[attack], "utf-16-le-bom"))

    data = load_dir(tmp_path / "corpus")
    assert [(r.path, r.messages[1].content) for r in data.records] == [(str(good), GOOD_ANSWER)]
    assert [(p.reason, p.path, p.record) for p in data.problems] == [
        ("unreadable_file", str(bad), None)]
    assert "DOCTYPE" in data.problems[0].detail
    # Nothing is dropped silently: every file gave records or is reported.
    assert {r.path for r in data.records} | {p.path for p in data.problems} == {str(good),
                                                                              str(bad)}
    assert secret.token not in dump(data.records, data.problems)

    report = cli_json(tmp_path / "corpus")
    assert report["usable"] == 1
    assert report["verdict"]["usable"] is False
    assert [(p["reason"], p["file"]) for p in report["problems"]] == [
        ("unreadable_file", str(bad))]
    text = run_cli(tmp_path / "corpus")
    assert text.returncode == 1
    for out in (json.dumps(report), text.stdout, text.stderr):
        assert secret.token not in out


def test_xinclude_is_not_processed(tmp_path: Path, secret: Secret) -> None:
    """XInclude needs no DOCTYPE, so the document is parsed: the include must stay inert."""
    xi = (f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{secret.path.as_uri()}"'
          ' parse="text"/>')
    text = medquad_xml(xi).replace(
        "</QAPairs>", f"<QAPair><Question>Q2 {xi}</Question><Answer>A2</Answer></QAPair>"
        "</QAPairs>")
    data = encode(text, "utf-8")
    assert secret.token.encode() in unsafe_parse(data)  # positive control

    path = write(tmp_path / "xi" / "doc.xml", data)
    records, problems = load_medquad(path, MedquadOptions())
    assert [p.reason for p in problems] == ["empty_answer"]
    assert [(r.messages[0].content, r.messages[1].content) for r in records] == [("Q2", "A2")]
    assert secret.token not in dump(records, problems)
    assert secret.token not in etree.tostring(parse_xml_file(path)).decode()
    dataset = load_dir(tmp_path / "xi")
    assert secret.token not in dump(dataset.records, dataset.problems)
    for flags in (["--json"], []):
        proc = run_cli(path, *flags)
        assert proc.returncode in (0, 1)
        assert secret.token not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# Nothing reaches the network


class CountingListener(socketserver.ThreadingTCPServer):
    """An HTTP-ish server on 127.0.0.1 that counts every connection it accepts."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Reply)
        self._lock = threading.Lock()
        self._accepted = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._accepted += 1
        super().process_request(request, client_address)


class _Reply(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        body = b'<!ENTITY leak "from-the-network">'
        self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/xml-dtd\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    server = CountingListener()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def network_attacks(url: str, secret_path: Path) -> dict[str, bytes]:
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    entity = f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{url}/entity">]>' + medquad_xml("&xxe;")
    param = (f'<!DOCTYPE Document [<!ENTITY % ext SYSTEM "{url}/param.dtd"> %ext;]>'
             + medquad_xml("&leak;"))
    dtd = f'<!DOCTYPE Document SYSTEM "{url}/external.dtd">' + medquad_xml("&leak;")
    return {
        "external_entity": encode(entity, "utf-8"),
        "external_entity_utf16": encode(entity, "utf-16-le-bom"),
        "external_entity_utf7": encode(entity, "utf-7-hidden"),
        "external_dtd": encode(dtd, "utf-8"),
        "external_dtd_utf7": encode(dtd, "utf-7-hidden"),
        "public_dtd": encode(f'<!DOCTYPE Document PUBLIC "-//Evil//DTD X//EN" "{url}/pub.dtd">'
                             + medquad_xml(), "utf-8"),
        "parameter_entity": encode(param, "utf-8"),
        "parameter_entity_utf7": encode(param, "utf-7-hidden"),
        "out_of_band_exfiltration": encode(
            f'<!DOCTYPE Document [<!ENTITY % file SYSTEM "{secret_path.as_uri()}">'
            f'<!ENTITY % oob SYSTEM "{url}/oob.dtd"> %oob;]>' + medquad_xml(), "utf-8"),
        # No DOCTYPE: these are parsed, and must stay inert.
        "xinclude": encode(medquad_xml(
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}/xi"/>'),
            "utf-8"),
        "schema_location": encode(medquad_xml(
            extra=f' xmlns:xsi="{xsi}" xsi:noNamespaceSchemaLocation="{url}/schema.xsd"'),
            "utf-8"),
        "stylesheet_pi": encode(f'<?xml-stylesheet type="text/xsl" href="{url}/style.xsl"?>'
                                + medquad_xml(), "utf-8"),
    }


@pytest.mark.parametrize("attack", [
    "external_entity", "external_entity_utf16", "external_entity_utf7", "external_dtd",
    "external_dtd_utf7", "public_dtd", "parameter_entity", "parameter_entity_utf7",
    "out_of_band_exfiltration", "xinclude", "schema_location", "stylesheet_pi"])
def test_no_entry_point_connects_to_the_network(
    tmp_path: Path, secret: Secret, listener: CountingListener, attack: str
) -> None:
    data = network_attacks(listener.url, secret.path)[attack]
    corpus = tmp_path / "corpus"
    good = good_document(corpus)
    bad = write(corpus / "evil.xml", data)
    has_doctype = attack not in ("xinclude", "schema_location", "stylesheet_pi")

    for _name, attempt in file_entry_points(bad):
        if has_doctype:
            with pytest.raises(DataError):
                attempt()
        else:
            attempt()
    dataset = load_dir(corpus)
    assert str(good) in {r.path for r in dataset.records}
    if has_doctype:
        assert ("unreadable_file", str(bad)) in {(p.reason, p.path) for p in dataset.problems}
    for flags in (["--json"], []):
        on_file, on_dir = run_cli(bad, *flags), run_cli(corpus, *flags)
        assert "Traceback" not in on_file.stderr + on_dir.stderr
        assert on_file.returncode in ((2,) if has_doctype else (0, 1)), on_file.stderr
        assert on_dir.returncode in ((1,) if has_doctype else (0, 1)), on_dir.stderr

    assert listener.accepted == 0
    # The counter works: a real connection is counted.
    with socket.create_connection(listener.server_address[:2]) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.0 200")
    assert listener.accepted == 1


# ---------------------------------------------------------------------------------------------
# Entity expansion bombs: rejected, and memory stays small

MODULES = """
import contextlib, io, json, resource, sys
from pathlib import Path
import rich.console
from harness import cli
from harness.config import DataConfig
from harness.data import doctor, doctor_view
from harness.data.load import load_dataset
from harness.data.medquad import MedquadOptions, load_medquad
from harness.data.safexml import parse_xml_bytes, parse_xml_file
from harness.errors import DataError
"""

PROBE = MODULES + """
outcomes = {}
path = Path(sys.argv[1])
attempts = {
    "parse_xml_bytes": lambda: parse_xml_bytes(path, path.read_bytes()),
    "parse_xml_file": lambda: parse_xml_file(path),
    "load_medquad": lambda: load_medquad(path, MedquadOptions()),
    "load_dataset": lambda: load_dataset(DataConfig(path=str(path), format="medquad")),
}
for name, attempt in attempts.items():
    try:
        attempt()
        outcomes[name] = "accepted"
    except DataError:
        outcomes[name] = "DataError"
data = load_dataset(DataConfig(path=str(path.parent), format="medquad"))
outcomes["directory"] = sorted(p.reason for p in data.problems if p.path == str(path))
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    outcomes["cli"] = cli.main(["data", "check", str(path), "--json"])
"""

REPORT = """
print(json.dumps({"maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "outcomes": outcomes if "outcomes" in globals() else None}))
"""


def peak_rss_mib(code: str, *args: str) -> tuple[float, Any]:
    """Peak resident memory of a fresh interpreter running ``code``, and what it reported."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes there, KiB on Linux
    return result["maxrss"] / divisor, result["outcomes"]


@pytest.fixture(scope="module")
def baseline_rss_mib() -> float:
    rss, _ = peak_rss_mib(MODULES + "outcomes = None\n" + REPORT)
    return rss


def billion_laughs() -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 11)]
    return f"<!DOCTYPE Document [{''.join(entities)}]>" + medquad_xml("&lol10;")


def quadratic_blowup() -> str:
    return (f'<!DOCTYPE Document [<!ENTITY a "{"x" * 100_000}">]>'
            + medquad_xml("&a;" * 20_000))


BOMBS: dict[str, Callable[[], str]] = {"billion_laughs": billion_laughs,
                                       "quadratic_blowup": quadratic_blowup}


@pytest.mark.parametrize("how", ["utf-8", "utf-16-le-bom", "utf-7-hidden"])
@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_entity_bombs_are_rejected_in_little_memory(
    tmp_path: Path, baseline_rss_mib: float, bomb: str, how: str
) -> None:
    bad = write(tmp_path / "corpus" / "bomb.xml", encode(BOMBS[bomb](), how))
    good_document(tmp_path / "corpus")
    rss, outcomes = peak_rss_mib(PROBE + REPORT, str(bad))
    assert outcomes == {
        "parse_xml_bytes": "DataError", "parse_xml_file": "DataError",
        "load_medquad": "DataError", "load_dataset": "DataError",
        "directory": ["unreadable_file"], "cli": 2}
    assert rss - baseline_rss_mib < 50, (rss, baseline_rss_mib)


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_entity_bombs_are_refused_in_process_naming_the_file(tmp_path: Path, bomb: str) -> None:
    bad = write(tmp_path / "bomb.xml", encode(BOMBS[bomb](), "utf-8"))
    assert_rejected_everywhere(bad)
    assert_cli_refuses_file(bad)


# ---------------------------------------------------------------------------------------------
# DOCTYPE in wide encodings


@pytest.mark.parametrize("how", ENCODINGS)
def test_doctype_is_refused_in_any_encoding(tmp_path: Path, how: str) -> None:
    harmless = '<!DOCTYPE Document [<!ENTITY name "Example">]>' + medquad_xml("&name; answer")
    data = encode(harmless, how)
    # The encoding is one lxml reads: without the refusal, this would load.
    assert b"Example answer" in unsafe_parse(data)
    bad = write(tmp_path / "doc.xml", data)
    with pytest.raises(DataError) as info:
        parse_xml_bytes(bad, data)
    assert "DOCTYPE" in info.value.what
    assert_rejected_everywhere(bad)


@pytest.mark.parametrize("how", ENCODINGS[:-1])
def test_documents_without_doctype_load_in_any_encoding(tmp_path: Path, how: str) -> None:
    path = write(tmp_path / "doc.xml", encode(medquad_xml(), how))
    records, problems = load_medquad(path, MedquadOptions())
    assert problems == []
    assert [(r.messages[0].content, r.messages[1].content) for r in records] == [
        (GOOD_QUESTION, GOOD_ANSWER)]


# ---------------------------------------------------------------------------------------------
# Deep trees


def deep(depth: int) -> str:
    return medquad_xml("<b>" * depth + "deep" + "</b>" * depth)


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_elements_are_an_error_not_a_crash(tmp_path: Path, depth: int) -> None:
    bad = write(tmp_path / "corpus" / "deep.xml", encode(deep(depth), "utf-8"))
    good = good_document(tmp_path / "corpus")
    with pytest.raises(DataError) as info:
        parse_xml_file(bad)
    assert "not well-formed XML" in info.value.what
    assert "depth" in info.value.what.lower()
    assert_rejected_everywhere(bad)
    assert_cli_refuses_file(bad)

    data = load_dir(tmp_path / "corpus")
    assert [r.path for r in data.records] == [str(good)]
    assert [(p.reason, p.path) for p in data.problems] == [("unreadable_file", str(bad))]


def test_moderate_nesting_still_parses(tmp_path: Path) -> None:
    """The control for the depth test: the refusal is about depth, not the markup."""
    path = write(tmp_path / "doc.xml", encode(deep(200), "utf-8"))
    records, problems = load_medquad(path, MedquadOptions())
    assert problems == []
    assert [r.messages[1].content for r in records] == ["deep"]


# ---------------------------------------------------------------------------------------------
# Files that are XML but not (usable) MedQuAD


def test_valid_xml_that_is_not_medquad_is_unrecognised(tmp_path: Path) -> None:
    path = write(tmp_path / "page.xml", "<html><body/></html>")
    records, problems = load_medquad(path, MedquadOptions())
    assert records == []
    assert [(p.reason, p.path, p.record) for p in problems] == [
        ("unrecognised_file", str(path), None)]
    assert "<html>" in problems[0].detail


def test_empty_qapairs_is_an_empty_document(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.xml",
                 '<Document id="0000009" source="GHR"><Focus>F</Focus><QAPairs/></Document>')
    records, problems = load_medquad(path, MedquadOptions())
    assert records == []
    assert [(p.reason, p.path, p.record) for p in problems] == [
        ("empty_document", str(path), None)]
    assert not problems[0].is_defect


def test_disease_file_root_takes_its_id_from_fid(tmp_path: Path) -> None:
    path = write(tmp_path / "CDC" / "disease.xml", (
        '<DiseaseFile fid="CDC-0042" source="CDC" url="https://example.org/cdc">'
        "<Focus>Flu</Focus><QAPairs><QAPair>"
        '<Question qid="CDC-0042-1" qtype="symptoms">What are the symptoms of flu?</Question>'
        "<Answer>Fever   and  cough.</Answer></QAPair></QAPairs></DiseaseFile>"))
    records, problems = load_medquad(path, MedquadOptions())
    assert problems == []
    (record,) = records
    assert record.meta["document_id"] == "CDC-0042"
    assert record.group.endswith("CDC-0042")  # the split group is built from the document id
    assert record.meta["qtype"] == "symptoms"
    assert record.messages[1].content == "Fever and cough."


def test_a_mixed_directory_accounts_for_every_file(tmp_path: Path, secret: Secret) -> None:
    corpus = tmp_path / "corpus"
    good = good_document(corpus / "1_GARD_QA")
    files = {
        "good": good,
        "xxe": write(corpus / "1_GARD_QA" / "xxe.xml",
                     encode(file_attacks(secret)["external_entity"], "utf-8")),
        "bomb": write(corpus / "2_GHR_QA" / "bomb.xml", encode(billion_laughs(), "utf-16-be-bom")),
        "deep": write(corpus / "2_GHR_QA" / "deep.xml", encode(deep(10_000), "utf-8")),
        "html": write(corpus / "3_Other" / "page.xml", "<html><body/></html>"),
        "empty": write(corpus / "3_Other" / "empty.xml", "<Document id='e'><QAPairs/></Document>"),
        "broken": write(corpus / "3_Other" / "broken.xml", "<Document><QAPairs>"),
        "binary": write(corpus / "3_Other" / "binary.xml", bytes(range(256))),
        "notes": write(corpus / "readme.txt", "not data"),
    }
    data = load_dir(corpus)
    assert [r.path for r in data.records] == [str(good)]
    assert data.records[0].meta["source"] == "GARD"
    reasons = {Path(p.path).name: p.reason for p in data.problems}
    assert reasons == {
        "xxe.xml": "unreadable_file", "bomb.xml": "unreadable_file",
        "deep.xml": "unreadable_file", "page.xml": "unrecognised_file",
        "empty.xml": "empty_document", "broken.xml": "unreadable_file",
        "binary.xml": "unreadable_file", "readme.txt": "ignored_file"}
    assert {str(p) for p in files.values()} == (
        {r.path for r in data.records} | {p.path for p in data.problems})
    assert secret.token not in dump(data.records, data.problems)


# ---------------------------------------------------------------------------------------------
# Every QA pair is accounted for, whatever the nesting


def _pair(n: int) -> str:
    return f"<QAPair><Question>Question {n}?</Question><Answer>Answer {n}.</Answer></QAPair>"


def _questions(records: Sequence[Record]) -> list[str]:
    return [r.messages[0].content for r in records]


def test_qa_pairs_outside_any_document_are_not_dropped_silently(tmp_path: Path) -> None:
    """A QAPair beside (not inside) a Document must give a record or a problem."""
    path = write(tmp_path / "collection.xml", (
        f'<Collection><Document id="1"><QAPairs>{_pair(1)}</QAPairs></Document>'
        f"<QAPairs>{_pair(2)}</QAPairs></Collection>"))
    records, problems = load_medquad(path, MedquadOptions())
    assert len(records) + sum(p.record is not None for p in problems) == 2, (records, problems)


def test_nested_documents_do_not_read_a_pair_twice(tmp_path: Path) -> None:
    path = write(tmp_path / "nested.xml", (
        f'<Document id="1"><QAPairs>{_pair(1)}</QAPairs>'
        f'<Document id="2"><QAPairs>{_pair(2)}</QAPairs></Document></Document>'))
    records, problems = load_medquad(path, MedquadOptions())
    assert problems == []
    assert sorted(_questions(records)) == ["Question 1?", "Question 2?"]
