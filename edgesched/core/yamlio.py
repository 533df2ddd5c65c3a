"""Load YAML into pydantic models with errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edgesched.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Walk a composed YAML node tree along a pydantic error location; return a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def format_validation_error(source: str, err: ValidationError, root: yaml.Node | None) -> str:
    """Render a pydantic error as ``file:line: field: message`` lines."""
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        got = e.get("input")
        got_txt = "" if isinstance(got, dict | list) else f" (got {got!r})"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {field}: {msg}{got_txt}")
    return "\n".join(lines)


def parse_yaml(
    text: str, model: type[M], source: str = "<string>", context: dict[str, Any] | None = None
) -> M:
    """Parse YAML text into ``model``; ``context`` reaches the model's validators.

    Raises:
        ConfigError: the text is not YAML, or does not fit ``model``; the message names
            ``source``, the line and the field.
    """
    try:
        root = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: the YAML is nested too deeply to be a config") from None
    if data is None:
        raise ConfigError(f"{source}: the file is empty; expected a mapping of {model.__name__}")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping for {model.__name__}, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err, root)) from None


def load_yaml(path: str | Path, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Read ``path`` and parse it into ``model`` (see :func:`parse_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_yaml(text, model, source=str(path), context=context)


def dump_yaml(obj: BaseModel, path: str | Path) -> None:
    """Write a model as YAML (defaults left out)."""
    data = obj.model_dump(mode="json", exclude_defaults=True)
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def save_json(obj: BaseModel, path: str | Path) -> Path:
    """Write a model as indented JSON, the form :func:`load_json` reads; return the path."""
    path = Path(path)
    path.write_text(obj.model_dump_json(indent=1), encoding="utf-8")
    return path


def load_json(path: str | Path, model: type[M], what: str, hint: str = "") -> M:
    """Read and validate a JSON file of ``model``; ``what`` names it in errors (``"profile"``).

    Raises:
        ConfigError: unreadable, not JSON, or invalid (naming the first bad field, then ``hint``).
    """
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = err.error_count() - 1
        raise ConfigError(
            f"{path}: not a valid {what}: {field}: {first['msg']}"
            + (f" (and {more} more errors)" if more else "")
            + (f" ({hint})" if hint else "")
        ) from None
