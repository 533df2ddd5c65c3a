"""Reading the built-in catalog from its YAML data files (package data).

``devices.yaml`` and ``models.yaml`` hold lists of :class:`DeviceSpec` and :class:`ModelSpec`.
``profiles.yaml`` holds only profiles with a published (or measured) solo latency; an entry may
leave out ``batch_slope`` and ``utilisation``, which are then estimated. A malformed file raises
:class:`~edgesched.errors.ConfigError` naming the file, the line and the field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgesched.catalog._catalog import Catalog
from edgesched.catalog._estimate import estimate_profile
from edgesched.core.sourced import Sourced
from edgesched.core.specs import DeviceSpec, ModelSpec, Profile
from edgesched.errors import ConfigError, UnknownNameError

DEVICES_FILE = "devices.yaml"
MODELS_FILE = "models.yaml"
PROFILES_FILE = "profiles.yaml"
_DATA_DIR = "edgesched/catalog/data"

_M = TypeVar("_M", bound=BaseModel)
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser where libyaml exists


class ProfileEntry(BaseModel):
    """One entry of ``profiles.yaml``: a known latency, optionally with slope and utilisation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str
    model: str
    latency_s: Sourced
    batch_slope: Sourced | None = None
    utilisation: Sourced | None = None


class _DevicesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    devices: list[DeviceSpec] = Field(min_length=1)


class _ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec] = Field(min_length=1)


class _ProfilesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profiles: list[ProfileEntry] = Field(default_factory=list)


class _Document:
    """A parsed YAML file: its data and its node tree (for line numbers)."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        try:
            self.node = yaml.compose(text, Loader=_YamlLoader)
            self.data: Any = yaml.load(text, Loader=_YamlLoader)  # a safe loader (C or Python)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{where}: invalid YAML: {problem}") from exc

    def line(self, loc: Sequence[int | str]) -> int | None:
        """1-based line of the deepest node on the path ``loc`` (None for an empty file)."""
        node = self.node
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                child = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                child = node.value[part] if 0 <= part < len(node.value) else None
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line

    def where(self, loc: Sequence[int | str]) -> str:
        """``file:line: field`` for the path ``loc``."""
        line = self.line(loc)
        head = f"{self.source}:{line}" if line is not None else self.source
        return f"{head}: {self._field(loc)}" if loc else head

    def _field(self, loc: Sequence[int | str]) -> str:
        text = ""
        data = self.data
        for part in loc:
            if isinstance(part, int):
                text += f"[{part}]"
                data = data[part] if isinstance(data, list) and part < len(data) else None
                name = data.get("name") if isinstance(data, dict) else None
                if isinstance(name, str):
                    text += f" ({name})"
            else:
                text += f".{part}" if text else str(part)
                data = data.get(part) if isinstance(data, dict) else None
        return text

    def validate(self, model: type[_M]) -> _M:
        """Validate the whole file against ``model``, turning errors into :class:`ConfigError`."""
        try:
            return model.model_validate({} if self.data is None else self.data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            lines = [f"{self.where(e['loc'])}: {e['msg']}" for e in errors[:5]]
            if len(errors) > 5:
                lines.append(f"... and {len(errors) - 5} more")
            raise ConfigError("\n".join(lines)) from exc


def _read(name: str) -> str:
    return resources.files("edgesched.catalog").joinpath("data", name).read_text(encoding="utf-8")


def build_catalog(texts: Mapping[str, str]) -> Catalog:
    """Parse the three catalog files' contents into a :class:`Catalog`.

    Args:
        texts: YAML text by file name (:data:`DEVICES_FILE`, :data:`MODELS_FILE`,
            :data:`PROFILES_FILE`; a missing profiles file means no known profiles).

    Raises:
        ConfigError: a file is malformed; the message names the file, line and field.
    """
    dev_doc = _Document(texts[DEVICES_FILE], f"{_DATA_DIR}/{DEVICES_FILE}")
    mod_doc = _Document(texts[MODELS_FILE], f"{_DATA_DIR}/{MODELS_FILE}")
    pro_doc = _Document(texts.get(PROFILES_FILE, "profiles: []"), f"{_DATA_DIR}/{PROFILES_FILE}")
    devices = _unique(dev_doc, "devices", dev_doc.validate(_DevicesFile).devices)
    models = _unique(mod_doc, "models", mod_doc.validate(_ModelsFile).models)
    profiles: dict[tuple[str, str], Profile] = {}
    for i, entry in enumerate(pro_doc.validate(_ProfilesFile).profiles):
        for field, name, known in (
            ("device", entry.device, devices),
            ("model", entry.model, models),
        ):
            if name not in known:
                hint = UnknownNameError(field, name, known)
                raise ConfigError(f"{pro_doc.where(['profiles', i, field])}: {hint}")
        key = (entry.device, entry.model)
        if key in profiles:
            raise ConfigError(
                f"{pro_doc.where(['profiles', i])}: second profile of {entry.model!r} on "
                f"{entry.device!r}"
            )
        profiles[key] = _complete(entry, devices[entry.device], models[entry.model])
    return Catalog(devices.values(), models.values(), profiles.values())


def _unique(doc: _Document, key: str, items: list[_M]) -> dict[str, _M]:
    out: dict[str, _M] = {}
    for i, item in enumerate(items):
        name = getattr(item, "name")  # noqa: B009 - DeviceSpec and ModelSpec both have it
        if name in out:
            raise ConfigError(f"{doc.where([key, i, 'name'])}: duplicate name {name!r}")
        out[name] = item
    return out


def _complete(entry: ProfileEntry, device: DeviceSpec, model: ModelSpec) -> Profile:
    """A full profile from a file entry, estimating the numbers it leaves out."""
    guess = estimate_profile(device, model)
    return Profile(
        device=entry.device,
        model=entry.model,
        latency_s=entry.latency_s,
        batch_slope=entry.batch_slope or guess.batch_slope,
        utilisation=entry.utilisation or guess.utilisation,
    )


@functools.cache
def load_catalog() -> Catalog:
    """The built-in catalog, parsed once from the package's data files.

    Raises:
        ConfigError: a data file is malformed (a packaging bug).
    """
    return build_catalog({name: _read(name) for name in (DEVICES_FILE, MODELS_FILE, PROFILES_FILE)})
