"""Fitting interference from measured matrices, and calibrating the simulator with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesched.catalog import load_catalog
from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError
from edgesched.profile.fit import MeasuredInterference, catalog_profiles, fit_probe
from edgesched.profile.schema import ProfileFile
from edgesched.sim.interference import NoInterference, ParametricInterference
from tests.profile.builders import synthetic_profile

COEF = {
    ("resnet18", "resnet18"): 0.9,
    ("resnet18", "mobilenet_v2"): 0.3,
    ("mobilenet_v2", "resnet18"): 1.2,
    ("mobilenet_v2", "mobilenet_v2"): 0.4,
}


def linear(probe: str, running: dict[str, int]) -> float:
    return 1.0 + sum(COEF[(probe, m)] * n for m, n in running.items())


def bent(probe: str, running: dict[str, int]) -> float:
    """Saturating: not linear, so the parametric fit has a visible error."""
    return 1.0 + sum(running.values()) ** 0.5


@pytest.fixture
def profile() -> ProfileFile:
    return synthetic_profile("x86-mini-pc", {"resnet18": 0.030, "mobilenet_v2": 0.010}, linear)


def test_a_linear_matrix_is_fitted_exactly(profile: ProfileFile) -> None:
    fit = fit_probe(profile, "resnet18")
    assert fit.coef == pytest.approx([0.9, 0.3])
    assert fit.rmse == pytest.approx(0.0, abs=1e-9)
    assert fit.table[(0, 0)] == 1.0
    assert fit.table[(2, 1)] == pytest.approx(1 + 0.9 * 2 + 0.3)


def test_a_curved_matrix_reports_its_fit_error() -> None:
    p = synthetic_profile("x86-mini-pc", {"resnet18": 0.03, "mobilenet_v2": 0.01}, bent)
    fit = fit_probe(p, "mobilenet_v2")
    assert fit.rmse > 0.01
    assert 0 < fit.max_rel_err < 1


def test_measured_interference_uses_the_table_inside_the_grid(profile: ProfileFile) -> None:
    model = MeasuredInterference([profile], fallback=NoInterference())
    got = model.slowdown("x86-mini-pc", "mobilenet_v2", {"resnet18": 2, "mobilenet_v2": 1})
    assert got == pytest.approx(linear("mobilenet_v2", {"resnet18": 2, "mobilenet_v2": 1}))


def test_measured_interference_extrapolates_outside_the_grid() -> None:
    p = synthetic_profile("x86-mini-pc", {"resnet18": 0.03, "mobilenet_v2": 0.01}, linear)
    model = MeasuredInterference([p], fallback=NoInterference())
    got = model.slowdown("x86-mini-pc", "resnet18", {"resnet18": 5})
    assert got == pytest.approx(1 + 0.9 * 5)


def test_unmeasured_pairs_fall_back(profile: ProfileFile) -> None:
    model = MeasuredInterference([profile], fallback=NoInterference())
    assert model.slowdown("jetson-nano-4gb", "resnet18", {"resnet18": 3}) == 1.0
    assert model.slowdown("x86-mini-pc", "resnet50", {"resnet18": 1}) == 1.0
    assert model.slowdown("x86-mini-pc", "resnet18", {"resnet50": 1}) == 1.0


def test_catalog_profiles_are_measured_and_keep_the_catalog_utilisation(
    profile: ProfileFile,
) -> None:
    cat = load_catalog()
    (r18, mb2) = catalog_profiles(profile, cat)
    assert r18.latency_s.value == pytest.approx(0.030)
    assert r18.latency_s.source == "measured"
    assert r18.batch_slope.value == pytest.approx(0.5)
    assert r18.utilisation == cat.profile("x86-mini-pc", "resnet18").utilisation
    assert mb2.model == "mobilenet_v2"


def test_a_cluster_calibrated_from_a_profile_simulates_with_it(
    profile: ProfileFile, tmp_path: Path
) -> None:
    from edgesched.core.scenario import ScenarioConfig
    from edgesched.sim.runner import make_interference, simulate

    profile.save(tmp_path / "p.json")
    (tmp_path / "cluster.yaml").write_text(
        "nodes:\n  - {id: box, device: x86-mini-pc, models: {resnet18: 1, mobilenet_v2: 1}}\n"
        "profiles: [p.json]\n"
    )
    cluster = Cluster.load(tmp_path / "cluster.yaml")
    assert cluster.catalog.profile("x86-mini-pc", "resnet18").latency_s.value == 0.030
    assert isinstance(make_interference(cluster), MeasuredInterference)
    sc = ScenarioConfig.parse(
        "requests: 300\nrate_rps: 5\nmodels: {resnet18: {weight: 1, slo_s: 1}}\n"
    )
    result = simulate(cluster, sc, "round-robin")
    # Poisson at 5/s against 30 ms: mostly alone, so close to the measured latency.
    assert result.metrics.latency_p50_s == pytest.approx(0.030, rel=0.05)
    fallback = make_interference(cluster).fallback  # type: ignore[attr-defined]
    assert isinstance(fallback, ParametricInterference)


def test_a_profile_of_an_unknown_device_cannot_calibrate(profile: ProfileFile) -> None:
    other = profile.model_copy(update={"device": "my-board"})
    cluster = Cluster.parse("nodes:\n  - {id: box, device: x86-mini-pc, models: {resnet18: 1}}\n")
    with pytest.raises(ConfigError, match="my-board"):
        cluster.with_measured([other])


def test_profile_files_round_trip_and_bad_files_are_config_errors(
    profile: ProfileFile, tmp_path: Path
) -> None:
    path = profile.save(tmp_path / "p.json")
    assert ProfileFile.load(path) == profile
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ProfileFile.load(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text('{"format": "edgesched-profile/1"}')
    with pytest.raises(ConfigError, match="not a valid"):
        ProfileFile.load(tmp_path / "wrong.json")
    with pytest.raises(ConfigError, match="cannot read"):
        ProfileFile.load(tmp_path / "missing.json")


def test_the_fit_command_prints_the_fit_error(profile: ProfileFile, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from edgesched.cli import app

    path = profile.save(tmp_path / "p.json")
    done = CliRunner().invoke(app, ["profile", "fit", str(path), "--json"])
    assert done.exit_code == 0, done.output
    fits = {f["probe"]: f for f in json.loads(done.stdout)["fits"]}
    assert fits["resnet18"]["slowdown_per_instance"]["mobilenet_v2"] == pytest.approx(0.3)
    assert fits["resnet18"]["rmse"] == pytest.approx(0.0, abs=1e-9)
    table = CliRunner().invoke(app, ["profile", "fit", str(path)])
    assert table.exit_code == 0 and "RMSE" in table.stdout


def test_shipped_measured_profiles_are_listed() -> None:
    from edgesched.catalog.measured import measured_profiles

    shipped = measured_profiles("cloud-h100")
    assert {m.profile.mode for m in shipped} >= {"processes", "streams"}
    for m in shipped:
        assert m.profile.idle_power is not None and m.profile.idle_power.meter == "nvml"
        assert m.worst_slowdown is not None and m.worst_slowdown > 1
        assert len(m.heatmaps) == 3
