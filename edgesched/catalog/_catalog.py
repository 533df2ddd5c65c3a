"""The :class:`Catalog`: devices, models and the best known profile of every pair."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar

from edgesched.catalog._estimate import estimate_profile
from edgesched.core.sourced import SOURCE_RANK, Sourced
from edgesched.core.specs import DeviceSpec, ModelSpec, Profile
from edgesched.errors import UnknownNameError

_FIELDS = ("latency_s", "batch_slope", "utilisation")
_T = TypeVar("_T")


def _at_least_as_good(new: Sourced, old: Sourced) -> bool:
    return SOURCE_RANK[new.source] >= SOURCE_RANK[old.source]


def merge_profile(base: Profile, new: Profile) -> Profile:
    """``base`` with each number of ``new`` whose source ranks at least as high as base's.

    Args:
        base: the profile in force.
        new: the candidate numbers, for the same device and model.

    Returns:
        A profile taking, field by field, the number with the stronger source (``new`` on ties).
    """
    if (base.device, base.model) != (new.device, new.model):
        raise ValueError(
            f"cannot merge profile of {new.model!r} on {new.device!r} into "
            f"{base.model!r} on {base.device!r}"
        )
    updates = {
        name: getattr(new, name)
        for name in _FIELDS
        if _at_least_as_good(getattr(new, name), getattr(base, name))
    }
    return base.model_copy(update=updates) if updates else base


class Catalog:
    """Devices, models and profiles; measured overrides published, published overrides estimated.

    Profiles that no file or caller supplies are estimated on first use from the device's and the
    model's specs (:mod:`edgesched.catalog._estimate`) and cached.

    Raises:
        UnknownNameError: when a device or model name, or a profile's, is not in the catalog.
    """

    def __init__(
        self,
        devices: Iterable[DeviceSpec],
        models: Iterable[ModelSpec],
        profiles: Iterable[Profile] = (),
    ) -> None:
        """Build a catalog.

        Args:
            devices: device kinds; names must be unique.
            models: model kinds; names must be unique.
            profiles: known (published or measured) profiles; each may be partly estimated.
                Later profiles for the same pair are merged over earlier ones, field by field.

        Raises:
            ValueError: on a duplicate device or model name.
            UnknownNameError: when a profile names an unknown device or model.
        """
        self._devices = _unique("device", ((d.name, d) for d in devices))
        self._models = _unique("model", ((m.name, m) for m in models))
        self._known: dict[tuple[str, str], Profile] = {}
        self._cache: dict[tuple[str, str], Profile] = {}
        for profile in profiles:
            key = self._check_pair(profile.device, profile.model)
            old = self._known.get(key)
            self._known[key] = profile if old is None else merge_profile(old, profile)

    @property
    def devices(self) -> Mapping[str, DeviceSpec]:
        """Device kinds by name (read-only)."""
        return MappingProxyType(self._devices)

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        """Model kinds by name (read-only)."""
        return MappingProxyType(self._models)

    def device(self, name: str) -> DeviceSpec:
        """The device kind called ``name``.

        Raises:
            UnknownNameError: when no device has that name.
        """
        try:
            return self._devices[name]
        except KeyError:
            raise UnknownNameError("device", name, self._devices) from None

    def model(self, name: str) -> ModelSpec:
        """The model kind called ``name``.

        Raises:
            UnknownNameError: when no model has that name.
        """
        try:
            return self._models[name]
        except KeyError:
            raise UnknownNameError("model", name, self._models) from None

    def profile(self, device: str, model: str) -> Profile:
        """The best available profile of ``model`` on ``device``.

        Known (measured or published) numbers win; missing numbers are estimated.

        Raises:
            UnknownNameError: when the device or the model is unknown.
        """
        key = (device, model)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self._check_pair(device, model)
        best = estimate_profile(self._devices[device], self._models[model])
        known = self._known.get(key)
        if known is not None:
            best = merge_profile(best, known)
        self._cache[key] = best
        return best

    def with_profiles(self, profiles: Iterable[Profile]) -> Catalog:
        """A new catalog where ``profiles`` override, field by field, weaker or equal sources.

        A number replaces the one in force only when its source ranks at least as high
        (measured > published > estimated); this catalog is left unchanged.

        Raises:
            UnknownNameError: when a profile names an unknown device or model.
        """
        profiles = list(profiles)
        for profile in profiles:
            self._check_pair(profile.device, profile.model)
        merged = dict(self._known)
        for profile in profiles:
            key = (profile.device, profile.model)
            base = merged[key] if key in merged else self.profile(*key)
            merged[key] = merge_profile(base, profile)
        return Catalog(self._devices.values(), self._models.values(), merged.values())

    def _check_pair(self, device: str, model: str) -> tuple[str, str]:
        if device not in self._devices:
            raise UnknownNameError("device", device, self._devices)
        if model not in self._models:
            raise UnknownNameError("model", model, self._models)
        return device, model

    def __repr__(self) -> str:
        return (
            f"Catalog({len(self._devices)} devices, {len(self._models)} models, "
            f"{len(self._known)} known profiles)"
        )


def _unique(kind: str, items: Iterable[tuple[str, _T]]) -> dict[str, _T]:
    out: dict[str, _T] = {}
    for name, item in items:
        if name in out:
            raise ValueError(f"duplicate {kind} name {name!r}")
        out[name] = item
    return out
