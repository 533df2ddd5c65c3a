"""Tests of the built-in catalog: completeness, provenance, unit sanity and overrides."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from edgesched.catalog import Catalog, load_catalog
from edgesched.catalog._loader import DEVICES_FILE, MODELS_FILE, PROFILES_FILE, _read, build_catalog
from edgesched.core.sourced import SOURCE_RANK, Sourced
from edgesched.core.specs import Profile
from edgesched.errors import ConfigError, UnknownNameError

DEVICES = {
    "jetson-nano-4gb",
    "jetson-tx2",
    "jetson-xavier-nx",
    "jetson-agx-xavier",
    "jetson-orin-nano-8gb",
    "jetson-orin-nx-16gb",
    "jetson-agx-orin-64gb",
    "raspberry-pi-4b",
    "raspberry-pi-5",
    "x86-mini-pc",
    "cloud-t4",
    "cloud-a100",
    "cloud-h100",
}
MODELS = {
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "ssdlite320_mobilenet_v3_large",
    "efficientnet_b0",
    "yolov8n",
    "vit_b_16",
    "digits-edge",
    "digits-cloud",
}
PAIRS = sorted(itertools.product(sorted(DEVICES), sorted(MODELS)))

#: MLPerf ResNet-50 SingleStream p90 latencies the catalog publishes (seconds).
MLPERF_RESNET50 = {
    "jetson-agx-orin-64gb": 0.640e-3,
    "jetson-orin-nx-16gb": 1.082e-3,
    "jetson-agx-xavier": 1.834e-3,
    "jetson-xavier-nx": 2.437e-3,
    "cloud-t4": 1.086e-3,
    "cloud-a100": 0.479e-3,
}


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def _sourced(obj: BaseModel, path: str = "") -> Iterator[tuple[str, Sourced]]:
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        if isinstance(value, Sourced):
            yield f"{path}{name}", value


def _texts() -> dict[str, str]:
    return {name: _read(name) for name in (DEVICES_FILE, MODELS_FILE, PROFILES_FILE)}


# ---------------------------------------------------------------------------- completeness


def test_all_devices_and_models_load(cat: Catalog) -> None:
    assert set(cat.devices) == DEVICES
    assert set(cat.models) == MODELS
    assert load_catalog() is cat  # parsed once


@pytest.mark.parametrize(("device", "model"), PAIRS, ids=[f"{d}-{m}" for d, m in PAIRS])
def test_every_pair_has_a_profile(cat: Catalog, device: str, model: str) -> None:
    profile = cat.profile(device, model)
    assert (profile.device, profile.model) == (device, model)
    assert profile.latency_s.value > 0
    assert 0 < profile.utilisation.value <= 1
    assert 0 < profile.batch_slope.value <= 1
    assert profile.latency_at(4) >= profile.latency_at(1)
    assert cat.profile(device, model) is profile  # cached


def test_device_kinds_and_classes(cat: Catalog) -> None:
    for name, dev in cat.devices.items():
        assert dev.kind == ("cloud" if name.startswith("cloud-") else "edge")
        assert dev.device_class in {"jetson", "sbc", "x86", "datacenter-gpu"}
    assert cat.device("raspberry-pi-5").device_class == "sbc"
    assert cat.device("x86-mini-pc").device_class == "x86"


def test_model_shapes_and_tasks(cat: Catalog) -> None:
    assert cat.model("ssdlite320_mobilenet_v3_large").input_shape == (3, 320, 320)
    assert cat.model("yolov8n").input_shape == (3, 640, 640)
    assert cat.model("resnet50").input_shape == (3, 224, 224)
    detectors = {"yolov8n", "ssdlite320_mobilenet_v3_large"}
    for name, spec in cat.models.items():
        assert spec.task == ("detection" if name in detectors else "classification"), name


# ---------------------------------------------------------------------------- provenance


def _all_sourced(cat: Catalog) -> Iterator[tuple[str, Sourced]]:
    for name, dev in cat.devices.items():
        yield from _sourced(dev, f"device {name}.")
    for name, spec in cat.models.items():
        yield from _sourced(spec, f"model {name}.")
    for device, model in PAIRS:
        yield from _sourced(cat.profile(device, model), f"profile {device}/{model}.")


def test_every_number_has_a_source(cat: Catalog) -> None:
    seen = 0
    for where, num in _all_sourced(cat):
        seen += 1
        assert num.source in SOURCE_RANK, where
        assert num.ref.strip(), where
        if num.source == "published":
            assert num.ref.startswith("http"), f"{where}: published ref must start with a URL"
    assert seen == 13 * 7 + 9 * 3 + 13 * 9 * 3  # devices, models, every pair's profile


def test_models_have_accuracy(cat: Catalog) -> None:
    for name, spec in cat.models.items():
        assert spec.accuracy is not None, name
        assert 0 < spec.accuracy.value < 1, name


def test_dvfs_tables(cat: Catalog) -> None:
    with_tables = {
        "jetson-nano-4gb",
        "jetson-tx2",
        "jetson-xavier-nx",
        "jetson-agx-xavier",
        "jetson-orin-nano-8gb",
        "jetson-orin-nx-16gb",
    }
    for name, dev in cat.devices.items():
        if name not in with_tables:
            assert dev.dvfs is None, name
            continue
        assert dev.dvfs is not None, name
        assert dev.dvfs.ref.strip()
        steps = [dev.dvfs.cpu_hz, dev.dvfs.gpu_hz, dev.dvfs.mem_hz]
        assert any(steps), name
        for table in steps:
            assert list(table) == sorted(set(table)), name
            assert all(1e7 <= hz <= 5e9 for hz in table), f"{name}: not in hertz?"


def test_estimated_profiles_state_their_formula(cat: Catalog) -> None:
    profile = cat.profile("raspberry-pi-4b", "resnet18")
    assert profile.source == "estimated"
    assert "flops / effective_flops + overhead" in profile.latency_s.ref
    assert "3.62e+09" in profile.latency_s.ref  # the inputs are plugged in
    gpu = cat.profile("cloud-a100", "mobilenet_v2")
    assert "t_compute" in gpu.utilisation.ref
    assert gpu.utilisation.value == pytest.approx(0.05)  # a small CNN barely uses an A100


# ---------------------------------------------------------------------------- unit sanity


def test_resnet50_is_slower_than_smaller_models_everywhere(cat: Catalog) -> None:
    for device in DEVICES:
        r50 = cat.profile(device, "resnet50").latency_s.value
        assert r50 > cat.profile(device, "resnet18").latency_s.value, device
        assert r50 > cat.profile(device, "mobilenet_v2").latency_s.value, device


def test_big_gpu_beats_small_board(cat: Catalog) -> None:
    h100 = cat.profile("cloud-h100", "resnet50").latency_s.value
    nano = cat.profile("jetson-nano-4gb", "resnet50").latency_s.value
    assert h100 < nano / 10
    pi4 = cat.profile("raspberry-pi-4b", "resnet50").latency_s.value
    pi5 = cat.profile("raspberry-pi-5", "resnet50").latency_s.value
    assert pi5 < pi4


def test_device_numbers_are_in_si_units(cat: Catalog) -> None:
    for name, dev in cat.devices.items():
        assert dev.peak_power_w.value >= dev.idle_power_w.value > 0, name
        assert dev.peak_power_w.value <= 1000, name
        assert dev.price_usd.value > 0, name
        assert 1e9 <= dev.memory_bytes.value <= 1e12, f"{name}: memory not in bytes?"
        assert 1 <= dev.cpu_cores.value <= 256, name
        assert 1e9 <= dev.effective_flops.value <= 1e15, f"{name}: not FLOP/s?"
        assert 0 < dev.interference_alpha.value <= 1, name


def test_model_numbers_are_in_si_units(cat: Catalog) -> None:
    for name, spec in cat.models.items():
        # from the 8×8 digits MLP (1.2 kFLOP) to ViT-B/16
        assert 1e3 <= spec.flops.value <= 1e11, f"{name}: not FLOP?"
        assert 1e2 <= spec.params.value <= 1e9, name
    # torchvision GFLOPS are GMACs: ResNet-50's 4.09 becomes 8.18e9 FLOP.
    assert cat.model("resnet50").flops.value == pytest.approx(8.18e9)


def test_agx_orin_resnet50_is_the_published_mlperf_figure(cat: Catalog) -> None:
    latency = cat.profile("jetson-agx-orin-64gb", "resnet50").latency_s
    assert latency.source == "published"
    assert latency.value == pytest.approx(0.640e-3, rel=1e-3)
    assert latency.ref.startswith("https://github.com/mlcommons/")


@pytest.mark.parametrize(("device", "latency"), sorted(MLPERF_RESNET50.items()))
def test_effective_flops_match_their_mlperf_anchor(
    cat: Catalog, device: str, latency: float
) -> None:
    published = cat.profile(device, "resnet50").latency_s
    assert published.source == "published"
    assert published.value == pytest.approx(latency, rel=1e-3)
    derived = cat.model("resnet50").flops.value / latency
    assert cat.device(device).effective_flops.value == pytest.approx(derived, rel=1e-3)


# ---------------------------------------------------------------------------- overrides


def _measured(value: float, device: str = "raspberry-pi-4b", model: str = "resnet18") -> Profile:
    def num(v: float) -> Sourced:
        return Sourced(value=v, source="measured", ref="runs/pi4/resnet18.json")

    return Profile(
        device=device,
        model=model,
        latency_s=num(value),
        batch_slope=num(0.8),
        utilisation=num(1.0),
    )


def test_measured_overrides_estimated(cat: Catalog) -> None:
    before = cat.profile("raspberry-pi-4b", "resnet18")
    assert before.latency_s.source == "estimated"
    new = cat.with_profiles([_measured(0.123)])
    after = new.profile("raspberry-pi-4b", "resnet18")
    assert after.latency_s.value == 0.123
    assert after.source == "measured"
    assert cat.profile("raspberry-pi-4b", "resnet18") == before  # original unchanged
    assert new.profile("raspberry-pi-4b", "resnet50") == cat.profile("raspberry-pi-4b", "resnet50")


def test_estimated_does_not_override_published(cat: Catalog) -> None:
    published = cat.profile("cloud-a100", "resnet50")
    guess = Sourced(value=9.0, source="estimated", ref="a guess")
    attempt = Profile(
        device="cloud-a100",
        model="resnet50",
        latency_s=guess,
        batch_slope=guess,
        utilisation=Sourced(value=0.5, source="estimated", ref="another guess"),
    )
    after = cat.with_profiles([attempt]).profile("cloud-a100", "resnet50")
    assert after.latency_s == published.latency_s
    # Field by field: the estimated utilisation ties with the estimate in force, so it replaces it.
    assert after.utilisation.value == 0.5


def test_measured_overrides_published_and_later_wins(cat: Catalog) -> None:
    first = _measured(1e-3, device="cloud-t4", model="resnet50")
    second = _measured(2e-3, device="cloud-t4", model="resnet50")
    new = cat.with_profiles([first]).with_profiles([second])
    assert new.profile("cloud-t4", "resnet50").latency_s.value == 2e-3


def test_unknown_names_raise_with_a_suggestion(cat: Catalog) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'jetson-tx2'"):
        cat.device("jetson-tx3")
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet50'"):
        cat.model("resnet-50")
    with pytest.raises(UnknownNameError, match="unknown device"):
        cat.profile("jetson-nan", "resnet50")
    with pytest.raises(KeyError):  # UnknownNameError is also a KeyError
        cat.profile("cloud-t4", "resnet5")
    with pytest.raises(UnknownNameError, match="Did you mean 'cloud-h100'"):
        cat.with_profiles([_measured(1.0, device="cloud-h10")])
    with pytest.raises(UnknownNameError, match="unknown model"):
        cat.with_profiles([_measured(1.0, model="vit_b_17")])


# ---------------------------------------------------------------------------- malformed files


def test_bad_source_names_file_line_and_field() -> None:
    texts = _texts()
    texts[DEVICES_FILE] = texts[DEVICES_FILE].replace(
        "      value: 99\n      source: published", "      value: 99\n      source: rumour", 1
    )
    with pytest.raises(ConfigError) as info:
        build_catalog(texts)
    message = str(info.value)
    assert "devices.yaml:" in message
    assert "devices[0] (jetson-nano-4gb).price_usd.source" in message


def test_missing_field_and_bad_yaml_raise_config_error() -> None:
    texts = _texts()
    texts[MODELS_FILE] = texts[MODELS_FILE].replace("    task: detection\n", "", 1)
    with pytest.raises(ConfigError, match=r"models\.yaml:\d+: .*\.task: Field required"):
        build_catalog(texts)
    texts = _texts()
    texts[PROFILES_FILE] += "  - device: [unclosed\n"
    with pytest.raises(ConfigError, match=r"profiles\.yaml:\d+: invalid YAML"):
        build_catalog(texts)


def test_profile_for_unknown_device_and_duplicates_raise_config_error() -> None:
    texts = _texts()
    texts[PROFILES_FILE] = texts[PROFILES_FILE].replace("device: cloud-t4", "device: cloud-t5", 1)
    with pytest.raises(ConfigError, match=r"profiles\[4\]\.device: unknown device 'cloud-t5'"):
        build_catalog(texts)
    texts = _texts()
    texts[MODELS_FILE] = texts[MODELS_FILE].replace("name: resnet18", "name: resnet50", 1)
    with pytest.raises(ConfigError, match="duplicate name 'resnet50'"):
        build_catalog(texts)


def test_peak_below_idle_is_rejected() -> None:
    texts = _texts()
    texts[DEVICES_FILE] = texts[DEVICES_FILE].replace("      value: 2.5\n", "      value: 25\n", 1)
    with pytest.raises(ConfigError, match=r"devices\[0\] \(jetson-nano-4gb\): .*below"):
        build_catalog(texts)
