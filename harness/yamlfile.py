"""The YAML the harness reads (search spaces, train configs): UTF-8, a bounded number of values
once aliases are expanded, and every failure a message that names the file.

YAML aliases let a file of a few hundred bytes stand for billions of values (nine levels of
ten aliases each); PyYAML shares the aliased nodes, so the cost only appears when something
walks the result, and a validation message that prints it took minutes and gigabytes. The
document's size with every alias expanded is counted on the node graph (each node once, so the
count itself is cheap) and a document past `MAX_VALUES` is refused before it is built.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from harness.decoding import decode
from harness.errors import DataError, HarnessError

MAX_VALUES = 100_000
"""Values (mappings, lists, scalars) a config may expand to; real ones hold a few hundred."""

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 4
_SHORT.maxlevel = 2


def short(value: Any) -> str:
    """A repr for messages, bounded however large or deep ``value`` is."""
    return _SHORT.repr(value)


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed YAML file ``path`` (``what`` it is, for messages)."""
    return load_yaml(read_text_file(path, what), str(path))


def read_text_file(path: str | Path, what: str) -> str:
    """The text of ``path``: UTF-8 (or UTF-16/32 with a byte-order mark), else a clear error."""
    if Path(path).exists() and not Path(path).is_file():
        raise HarnessError(f"{path}: the {what} is not a regular file (a directory, a FIFO?)")
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise HarnessError(f"{path}: cannot read the {what}: {err.strerror or err}") from None
    try:
        return decode(Path(path), data)
    except DataError as err:
        raise HarnessError(f"{path}: the {what} is {err.what}\n  What to do: {err.hint}") \
            from None


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed as one YAML document with the safe loader, refused when its aliases
    expand it past `MAX_VALUES` values or it nests too deeply to read."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise HarnessError(f"{source}: not valid YAML: {err}") from None
    except RecursionError:
        raise HarnessError(f"{source}: nested too deeply to read (thousands of levels); "
                           "a config needs a few") from None
    finally:
        loader.dispose()


def _check_size(root: Any, source: str) -> None:
    """Count the values of the document with aliases expanded; each node is visited once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = min(MAX_VALUES + 1, 1 + sum(sizes[id(c)] for c in _children(node)))
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise HarnessError(f"{source}: an alias refers to the value that contains it "
                               f"(line {node.start_mark.line + 1}): a config cannot be "
                               "recursive")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    if sizes[id(root)] > MAX_VALUES:
        raise HarnessError(f"{source}: with its aliases (*name) expanded it holds more than "
                           f"{MAX_VALUES:,} values, far more than any config does; write the "
                           "values out, or use fewer nested aliases")


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
