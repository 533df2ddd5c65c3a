"""Arrival processes: Poisson and MMPP rates and burstiness, trace replay and its errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgesched.core.scenario import MmppArrivals, ScenarioConfig
from edgesched.errors import ConfigError
from edgesched.sim.arrivals import build_workload, mmpp_times, poisson_times, read_trace
from edgesched.sim.runner import Result
from tests.builders import toy_cluster, toy_scenario

RATE = 200.0
KNOWN = {"a": 0, "b": 1}


def dispersion(times: np.ndarray, window_s: float) -> float:
    """Index of dispersion (variance / mean) of arrival counts per window."""
    counts = np.bincount((times // window_s).astype(np.int64))[:-1]  # drop the partial window
    return float(counts.var() / counts.mean())


def mmpp(*states: tuple[float, float]) -> MmppArrivals:
    return MmppArrivals(
        kind="mmpp", states=[{"rate_factor": f, "mean_dwell_s": d} for f, d in states]
    )


# ------------------------------------------------------------------------------ Poisson
def test_poisson_mean_rate() -> None:
    times = poisson_times(RATE, 20_000, np.random.default_rng(1))
    assert len(times) == 20_000
    assert np.all(np.diff(times) > 0) and times[0] > 0
    assert len(times) / times[-1] == pytest.approx(RATE, rel=0.03)
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential gaps: CV 1


def test_poisson_is_reproducible_per_seed() -> None:
    a = poisson_times(RATE, 100, np.random.default_rng(3))
    b = poisson_times(RATE, 100, np.random.default_rng(3))
    c = poisson_times(RATE, 100, np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rate", [0.0, -5.0])
def test_poisson_rejects_a_non_positive_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        poisson_times(rate, 10, np.random.default_rng(0))


# --------------------------------------------------------------------------------- MMPP
@pytest.mark.parametrize(
    "spec",
    [
        mmpp((1.5, 0.1), (0.5, 0.1)),  # symmetric busy/quiet spells
        mmpp((4.0, 0.05), (1.0, 0.15)),  # short intense bursts: the mean weighs time shares
        mmpp((3.0, 0.1), (0.0, 0.1), (1.0, 0.2)),  # a silent state
    ],
    ids=["symmetric", "asymmetric", "three-states"],
)
def test_mmpp_long_run_rate_and_burstiness(spec: MmppArrivals) -> None:
    times = mmpp_times(RATE, spec, 50_000, np.random.default_rng(5))
    assert len(times) == 50_000
    assert np.all(np.diff(times) >= 0)
    assert len(times) / times[-1] == pytest.approx(RATE, rel=0.05)
    poisson = poisson_times(RATE, 50_000, np.random.default_rng(5))
    assert dispersion(poisson, 0.5) == pytest.approx(1.0, abs=0.3)
    assert dispersion(times, 0.5) > 3.0
    assert dispersion(times, 0.5) > 2.0 * dispersion(poisson, 0.5)


# ------------------------------------------------------------------------- build_workload
def test_workload_follows_the_model_mix_and_per_model_settings() -> None:
    scenario = toy_scenario(
        requests=20_000,
        load=None,
        rate_rps=RATE,
        models={
            "a": {"weight": 3, "slo_s": 0.1, "input_bytes": 111},
            "b": {"weight": 1, "slo_s": 0.3},
        },
    )
    wl = build_workload(scenario, RATE, {"a": 999, "b": 4444}, np.random.default_rng(0))
    assert wl.model_names == ("a", "b")
    assert len(wl) == 20_000
    assert np.mean(wl.models == 0) == pytest.approx(0.75, abs=0.015)
    a = wl.models == 0
    assert np.all(wl.slo_s[a] == 0.1) and np.all(wl.slo_s[~a] == 0.3)
    assert np.all(wl.input_bytes[a] == 111)  # the scenario's own size wins
    assert np.all(wl.input_bytes[~a] == 4444)  # else the default
    assert wl.mean_rate_rps == pytest.approx(RATE, rel=0.03)


def test_zero_input_bytes_is_kept(run_sim: Callable[..., Result]) -> None:
    scenario = toy_scenario(
        requests=50, models={"a": {"weight": 1, "slo_s": 0.1, "input_bytes": 0}}
    )
    r = run_sim(toy_cluster(), scenario)
    assert np.all(r.workload.input_bytes == 0)


# --------------------------------------------------------------------------------- traces
def write(tmp_path: Path, text: str | bytes, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def trace_config(path: str, requests: int = 100) -> ScenarioConfig:
    return ScenarioConfig.parse(
        yaml.safe_dump(
            {
                "requests": requests,
                "models": {
                    "a": {"weight": 1, "slo_s": 0.1, "input_bytes": 500},
                    "b": {"weight": 1, "slo_s": 0.3},
                },
                "arrivals": {"kind": "trace", "path": path},
            }
        )
    )


def test_trace_replay_reads_columns_and_fills_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "time_s,model,slo_s,input_bytes\n"
        "0.5,a,0.05,100\n"
        "0.5,b,,\n"  # both defaults
        "1.25,a,,7\n"  # default SLO only
        "2.0,b,0.9,\n",  # default size only
    )
    wl = build_workload(trace_config(str(path)), None, {"a": 1, "b": 2048}, np.random.default_rng())
    np.testing.assert_array_equal(wl.times, [0.5, 0.5, 1.25, 2.0])
    np.testing.assert_array_equal(wl.models, [0, 1, 0, 1])
    np.testing.assert_array_equal(wl.slo_s, [0.05, 0.3, 0.1, 0.9])
    np.testing.assert_array_equal(wl.input_bytes, [100, 2048, 7, 2048])


def test_trace_with_only_the_required_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "model,time_s\nb,0.0\na,3.5\n")
    wl = build_workload(trace_config(str(path)), None, {"a": 1, "b": 2}, np.random.default_rng())
    np.testing.assert_array_equal(wl.times, [0.0, 3.5])
    np.testing.assert_array_equal(wl.slo_s, [0.3, 0.1])
    np.testing.assert_array_equal(wl.input_bytes, [2, 500])


def test_trace_stops_at_the_requested_count(tmp_path: Path) -> None:
    rows = "".join(f"{i * 0.1:.1f},a\n" for i in range(50))
    path = write(tmp_path, "time_s,model\n" + rows)
    wl = build_workload(
        trace_config(str(path), requests=20), None, {"a": 1, "b": 2}, np.random.default_rng()
    )
    assert len(wl) == 20
    assert wl.times[-1] == pytest.approx(1.9)


def test_relative_trace_path_is_resolved_against_the_scenario_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    write(folder, "time_s,model\n0.0,a\n0.1,a\n", name="t.csv")
    (folder / "scenario.yaml").write_text(
        "requests: 10\n"
        "models: {a: {weight: 1, slo_s: 0.1}}\n"
        "arrivals: {kind: trace, path: t.csv}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    scenario = ScenarioConfig.load_file(folder / "scenario.yaml")
    wl = build_workload(scenario, None, {"a": 3072}, np.random.default_rng())
    np.testing.assert_array_equal(wl.times, [0.0, 0.1])


def test_trace_drives_the_simulator(tmp_path: Path, run_sim: Callable[..., Result]) -> None:
    path = write(tmp_path, "time_s,model\n0.0,a\n0.002,b\n0.004,a\n")
    r = run_sim(toy_cluster(), trace_config(str(path)), "round-robin")
    np.testing.assert_array_equal(r.workload.times, [0.0, 0.002, 0.004])
    np.testing.assert_array_equal(r.node, [0, 0, 1])  # one counter per model


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("time_s,model\n0.1,a\n0.2,c\n", 3, "'c'"),  # unknown model
        ("time_s,model\n0.1,a\n0.3,a\n0.2,b\n", 4, "earlier"),  # unsorted times
        ("time_s,model\n0.1,a\nsoon,a\n", 3, "bad number"),  # not a number
        ("time_s,model,slo_s\n0.1,a,fast\n", 2, "bad number"),
        ("time_s,model,input_bytes\n0.1,a,1.5\n", 2, "bad number"),
    ],
    ids=["unknown-model", "unsorted", "time-not-a-number", "slo-not-a-number", "bytes-not-int"],
)
def test_bad_trace_rows_name_the_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        read_trace(path, KNOWN, 100)
    assert f"{path}:{line}:" in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["time,model\n0.1,a\n", "time_s\n0.1\n", "", "time_s,model\n"],
    ids=["misnamed-column", "missing-column", "empty-file", "no-rows"],
)
def test_bad_trace_files_name_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        read_trace(path, KNOWN, 100)


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_trace(tmp_path / "nope.csv", KNOWN, 100)


def test_bad_trace_surfaces_through_simulate(
    tmp_path: Path, run_sim: Callable[..., Result]
) -> None:
    path = write(tmp_path, "time_s,model\n0.1,a\n0.2,zz\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3:")):
        run_sim(toy_cluster(), trace_config(str(path)))


def test_short_trace_row_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "model,time_s\na,0.1\nb\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3:")):
        read_trace(path, KNOWN, 100)


def test_non_utf8_trace_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"time_s,model\n0.1,a\n\xff\xfe,a\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        read_trace(path, KNOWN, 100)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_trace_time_is_a_config_error(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, f"time_s,model\n0.1,a\n0.2,a\n{bad},a\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:4:")):
        read_trace(path, KNOWN, 100)
