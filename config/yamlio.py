"""Reading YAML files safely: UTF-8 with a clear error, bounded size, bounded aliases and
nesting, no duplicate mapping keys.

libyaml's parser is used where PyYAML has it (about ten times faster: a report loads the
configuration and every profile before it starts), else the pure-Python one; both build
the same safe types. Before any Python object is built, the composed node graph is
walked once (iteratively): an alias bomb (a few lines whose aliases expand to billions of
nodes) or a recursive alias is refused there, in time linear in the file, so nothing
after it (the ${VAR} substitution, the models) ever sees an expanded structure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# A province's configuration is tens of kilobytes, a profile a few; 4 MiB leaves room for
# thousands of devices while keeping a read, its nodes and their models in memory small.
MAX_YAML_BYTES = 4 * 1024 * 1024
# Aliases to mappings and sequences in one document (an alias to a scalar cannot grow
# anything): anchors are a convenience (shared polling settings), never a bulk mechanism.
MAX_ALIASES = 1000
# Nodes of the document with every alias expanded (what the loader and the models walk).
MAX_EXPANDED_NODES = 1_000_000
# Nesting depth of mappings and sequences; the real files nest fewer than 10 levels.
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"  # building a str cannot fail: not built twice


class YamlInputError(ValueError):
    """A file or text that cannot be read as a configuration document; ``path`` is where
    in the document (``sites[0].devices[2]``), empty for the whole file."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


def read_utf8(path: Path, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The text of ``path``, decoded as UTF-8.

    :raises OSError: the file cannot be read (the caller names it).
    :raises YamlInputError: larger than ``max_bytes``, or not UTF-8 (with the byte
        offset, line and column of the first bad byte).
    """
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlInputError(f"file is larger than {max_bytes} bytes: refused")
    return decode_utf8(data)


def decode_utf8(data: bytes) -> str:
    """``data`` as UTF-8 text (a leading byte order mark is dropped).

    :raises YamlInputError: naming the byte offset, line and column of the first bad byte.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlInputError(f"not UTF-8: byte 0x{data[exc.start]:02x} at byte offset "
                             f"{exc.start} (line {line}, column {column}); save the file "
                             "as UTF-8") from None


def load_yaml(text: str) -> Any:
    """Like yaml.safe_load, with the limits above and duplicate keys refused.

    :raises yaml.YAMLError: bad YAML (with the line and column).
    :raises YamlInputError: a limit exceeded or a key given twice (with its path and line).
    """
    if len(text) > MAX_YAML_BYTES:
        raise YamlInputError(f"document is larger than {MAX_YAML_BYTES} characters: refused")
    loader = SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_nodes(node, loader)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 - see below
            # PyYAML's constructors fail on some values with plain Python errors, not a
            # YAMLError: a timestamp with month 13 (ValueError), an empty !!int
            # (IndexError), ... Whatever the kind, it is this value that cannot be read.
            raise YamlInputError(f"a value cannot be read: {type(exc).__name__}: "
                                 f"{exc}") from None
    finally:
        loader.dispose()


def check_nodes(root: Node, loader: Any) -> None:
    """Walk the composed graph once: aliases, expanded size, depth, duplicate keys, and
    scalars PyYAML cannot build.

    :raises YamlInputError: the first limit exceeded, or the first duplicate key.
    """
    # Expanded size of each collection, computed bottom-up with an explicit stack; a node
    # met again while still open is a recursive alias. A scalar counts 1. Paths are kept
    # as links to the parent and built only for a message.
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    aliases = 0
    stack: list[tuple[Node, tuple | None, int, bool]] = [(root, None, 1, False)]
    while stack:
        node, link, depth, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            size = 1 + sum(sizes.get(id(c), 1) for c in _children(node))
            if size > MAX_EXPANDED_NODES:
                raise YamlInputError(f"more than {MAX_EXPANDED_NODES} nodes once aliases are "
                                     "expanded (an alias bomb?): refused", _path(link))
            sizes[key] = size
            continue
        if isinstance(node, ScalarNode):
            if node.tag != _STR_TAG and node.tag != _MERGE_TAG:
                _construct_scalar(node, link, loader)
            continue
        if key in open_nodes:
            raise YamlInputError(f"recursive alias at line {node.start_mark.line + 1}: "
                                 "refused", _path(link))
        if key in sizes:  # met before: this is an alias; its size counts in the parent's
            aliases += 1
            if aliases > MAX_ALIASES:
                # no path: which of the references is "the alias" is arbitrary
                raise YamlInputError(f"more than {MAX_ALIASES} aliases to mappings or "
                                     "sequences: refused")
            continue
        if depth > MAX_DEPTH:
            raise YamlInputError(f"nested deeper than {MAX_DEPTH} levels at line "
                                 f"{node.start_mark.line + 1}: refused", _path(link))
        open_nodes.add(key)
        stack.append((node, link, depth, True))
        if isinstance(node, MappingNode):
            _check_keys(node, link, loader)
            children = []
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, ScalarNode) else "?"
                children += [(key_node, link), (value_node, (link, name))]
        else:
            children = [(child, (link, i)) for i, child in enumerate(node.value)]
        stack += [(child, child_link, depth + 1, False) for child, child_link in children]


def _path(link: tuple | None) -> str:
    """``sites[0].devices[2]`` from the chain of (parent link, key or index)."""
    parts: list = []
    while link is not None:
        link, label = link
        parts.append(label)
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                   for p in reversed(parts)).lstrip(".")


def _construct_scalar(node: ScalarNode, link: tuple | None, loader: Any) -> None:
    """Build one scalar now (the loader keeps it for the document), so a value PyYAML
    fails on with a plain Python error (a timestamp with month 13 raises ValueError, an
    empty ``!!int`` IndexError) is reported with its path and line."""
    try:
        loader.construct_object(node)
    except yaml.YAMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is this value's
        kind = node.tag.rsplit(":", 1)[-1]
        raise YamlInputError(f"{node.value!r} at line {node.start_mark.line + 1} is not a "
                             f"valid {kind} ({exc})", _path(link)) from None


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value)


def _check_keys(node: MappingNode, link: tuple | None, loader: Any) -> None:
    """A key given twice in one mapping (merged ``<<`` keys may be overridden: that is
    what merging is for)."""
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
            continue  # complex keys: the constructor refuses unhashable ones
        if key_node.tag == _STR_TAG:
            key: object = key_node.value
        else:
            try:
                key = loader.construct_object(key_node, deep=True)
                hash(key)
            except Exception:  # noqa: BLE001 - the walk or the constructor reports it
                continue
        line = key_node.start_mark.line + 1
        # Compared as the dict will: 1, 1.0 and true are one key there, so one here.
        if key in seen:
            raise YamlInputError(f"duplicate key {key_node.value!r} at line {line} (first "
                                 f"at line {seen[key]}): give each key once", _path(link))
        seen[key] = line
