"""Reading YAML configuration safely: float literals such as ``1e-4`` stay floats.

PyYAML implements YAML 1.1, where ``1e-4`` (no dot) is a string, ``010`` is 8 (octal),
``1:30`` is 90 (base 60) and ``no`` is False. The loader below reads floats as YAML 1.2
does, leaves integers with a leading zero or a colon as text (the validators then name
them), and refuses a key given twice (PyYAML kept the last); validators report ``no``
with a hint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError, first_line


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        # A key a merge (<<: *anchor) brings in may be given again: that overrides it.
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


_NUMBERS = ("tag:yaml.org,2002:float", "tag:yaml.org,2002:int")
_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag not in _NUMBERS]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class _Dumper(yaml.SafeDumper):
    pass


# Quotes a string YAML 1.1 or the loader above would read as a number (a column named 1e3),
# the rest as PyYAML's safe_dump writes it.
for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        if _tag in _NUMBERS:
            _Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def dump_yaml(data: dict[str, Any]) -> str:
    """YAML text that :func:`read_yaml_mapping` reads back as ``data`` (keys in order)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100)


def read_yaml_mapping(path: Path, noun: str) -> dict[str, Any]:
    """Read ``path`` and return its top-level mapping, or raise a one-line error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"Cannot read {noun} file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise WorkbenchError(
            f"{path}: expected UTF-8 text ({exc.reason} at byte {exc.start}); save the "
            f"{noun} file as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise WorkbenchError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise WorkbenchError(
            f"{path}: expected a mapping of keys at the top level. Received: {type(data).__name__}"
        )
    return data


def parse_scalar(text: str) -> Any:
    """Read one command-line value the way the YAML files are read (``100`` is an int)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.YAMLError:
        return text
