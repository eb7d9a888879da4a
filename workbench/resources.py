"""Where the shipped YAML data (search spaces, task definitions) lives.

In a checkout (editable install) the folders sit at the repository root; a wheel
carries them inside the package as ``workbench/_data/<kind>``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """Return the folder holding the shipped ``kind`` files ("search_spaces" or "datasets")."""
    installed = _PACKAGE_DIR / "_data" / kind
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / kind


def resolve_named_file(name_or_path: str, kind: str, noun: str) -> Path:
    """Resolve a shipped name (``small``) or a YAML path (``my_space.yaml``) to a file.

    Raises:
        WorkbenchError: when neither a shipped name nor an existing file matches.
    """
    from workbench.errors import WorkbenchError

    candidate = Path(name_or_path).expanduser()
    looks_like_path = candidate.suffix in {".yaml", ".yml"} or "/" in name_or_path
    if looks_like_path:
        if candidate.is_dir():
            raise WorkbenchError(f"{noun} file {name_or_path} is a folder. Expected a YAML file")
        if not candidate.is_file():
            raise WorkbenchError(f"{noun} file not found: {name_or_path}")
        return candidate
    shipped = data_dir(kind) / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(shipped_names(kind)) or "(none)"
    raise WorkbenchError(
        f"Unknown {noun} {name_or_path!r}. Expected one of: {known}, or a path to a .yaml file."
    )


def command_reference(source: str, name: str, kind: str) -> str:
    """How a command line names a loaded file: its shipped ``name`` where that is the file
    it came from, else its absolute path."""
    path = Path(source).expanduser()
    shipped = data_dir(kind) / f"{name}.yaml"
    if shipped.is_file() and path.is_file() and shipped.resolve() == path.resolve():
        return name
    return str(path.resolve()) if path.is_file() else name


def install_extra(extra: str) -> str:
    """The command that adds one of this workbench's extras (``data``, ``text``,
    ``postgres``). Not ``pip install 'workbench[...]'``: that name on PyPI is another
    project."""
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return f"pip install -e '{checkout}[{extra}]'"
    return f"pip install '<this workbench's wheel or checkout>[{extra}]'"


def shipped_names(kind: str) -> list[str]:
    """Names of the shipped YAML files of one kind, sorted."""
    return sorted(p.stem for p in data_dir(kind).glob("*.yaml"))
