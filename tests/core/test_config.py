"""cluster.yaml and scenario.yaml: what loads, and errors that name file, line and field."""

from __future__ import annotations

import contextlib
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesched.bench.scenarios import default_cluster_path, default_scenario_path
from edgesched.catalog import Catalog, load_catalog
from edgesched.core.cluster import Cluster
from edgesched.core.scenario import MmppArrivals, PoissonArrivals, ScenarioConfig, TraceArrivals
from edgesched.errors import ConfigError
from tests.builders import toy_catalog

# Line numbers matter: the tests below edit single lines and expect errors to point at them.
CLUSTER = """\
name: site
nodes:
  - id: nano
    device: jetson-nano-4gb
    count: 2
    models: {resnet18: 1, mobilenet_v2: 2}
    link: lan
  - id: cloud
    device: cloud-a100
    models: {resnet50: 4}
    link: wan
links:
  - id: lan
    bandwidth_bytes_per_s: 125000000.0
    rtt_s: 0.0005
  - id: wan
    bandwidth_bytes_per_s: 12500000.0
    rtt_s: 0.04
    shared: true
"""

SCENARIO = """\
name: steady
seed: 3
requests: 500
rate_rps: 40.0
arrivals:
  kind: poisson
models:
  resnet18: {weight: 2, slo_s: 0.08}
  resnet50: {weight: 1, slo_s: 0.15, input_bytes: 25000}
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def edit(text: str, line: int, new: str | None) -> str:
    """``text`` with 1-based ``line`` replaced by ``new`` (or removed when None)."""
    lines = text.splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cluster_error(tmp_path: Path, text: str, catalog: Catalog) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        Cluster.load(path, catalog)
    return str(err.value).replace(str(path), "FILE")


def scenario_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text, "scenario.yaml")
    with pytest.raises(ConfigError) as err:
        ScenarioConfig.load_file(path)
    return str(err.value).replace(str(path), "FILE")


# ----------------------------------------------------------------------------- good files
def test_builtin_default_cluster_loads() -> None:
    cluster = Cluster.load(default_cluster_path())
    ids = [n.id for n in cluster.nodes]
    assert ids[:4] == ["pi5-0", "pi5-1", "nano-0", "nano-1"]
    assert [n.index for n in cluster.nodes] == list(range(len(ids)))
    assert sum(n.is_cloud for n in cluster.nodes) == 1
    assert {lk.id: lk.shared for lk in cluster.links} == {"lan": False, "wan": True}
    assert cluster.interference.kind == "parametric"
    assert all(n.link is not None for n in cluster.nodes)


def test_builtin_default_scenario_loads() -> None:
    scenario = ScenarioConfig.load_file(default_scenario_path())
    assert isinstance(scenario.arrivals, MmppArrivals)
    assert scenario.load == pytest.approx(0.7) and scenario.rate_rps is None
    assert scenario.base_dir == default_scenario_path().parent
    assert set(scenario.models) <= set(Cluster.load(default_cluster_path()).model_names)


def test_toy_cluster_yaml_loads(tmp_path: Path, catalog: Catalog) -> None:
    cluster = Cluster.load(write(tmp_path, CLUSTER), catalog)
    assert cluster.name == "site"
    assert [n.id for n in cluster.nodes] == ["nano-0", "nano-1", "cloud"]
    assert cluster.nodes[1].models == {"resnet18": 1, "mobilenet_v2": 2}
    assert cluster.nodes[2].is_cloud and not cluster.nodes[0].is_cloud
    assert cluster.nodes[2].link is not None and cluster.nodes[2].link.shared
    assert cluster.nodes[0].link is cluster.links[0]
    assert cluster.model_names == ("resnet18", "mobilenet_v2", "resnet50")
    assert Cluster.parse(CLUSTER, catalog).nodes == cluster.nodes


def test_toy_scenario_yaml_loads(tmp_path: Path) -> None:
    scenario = ScenarioConfig.load_file(write(tmp_path, SCENARIO, "scenario.yaml"))
    assert isinstance(scenario.arrivals, PoissonArrivals)
    assert (scenario.seed, scenario.requests, scenario.rate_rps) == (3, 500, 40.0)
    assert scenario.models["resnet50"].input_bytes == 25000
    assert scenario.models["resnet18"].input_bytes is None
    assert scenario.base_dir == tmp_path.resolve()


def test_minimal_files_use_defaults(catalog: Catalog) -> None:
    cluster = Cluster.parse(
        "nodes: [{id: n, device: raspberry-pi-5, models: {resnet18: 1}}]", catalog
    )
    assert cluster.name == "cluster" and cluster.links == () and cluster.nodes[0].link is None
    scenario = ScenarioConfig.parse(
        "requests: 1\nload: 0.5\nmodels: {resnet18: {weight: 1, slo_s: 1}}"
    )
    assert isinstance(scenario.arrivals, PoissonArrivals)
    trace = ScenarioConfig.parse(
        "requests: 1\nmodels: {m: {weight: 1, slo_s: 1}}\narrivals: {kind: trace, path: t.csv}"
    )
    assert isinstance(trace.arrivals, TraceArrivals)


# ---------------------------------------------------------------------------- cluster errors
P = pytest.param


@pytest.mark.parametrize(
    ("line", "new", "at", "field", "words"),
    [
        P(
            4,
            "    device: jetson-nano-4g",
            4,
            "nodes.0.device",
            "did you mean 'jetson-nano-4gb'",
            id="unknown-device",
        ),
        P(
            9,
            "    device: cloud-a1000",
            9,
            "nodes.1.device",
            "did you mean 'cloud-a100'",
            id="unknown-device-2",
        ),
        P(
            6,
            "    models: {resnet18: 1, mobilenetv2: 2}",
            6,
            "nodes.0.models",
            "'mobilenet_v2'",
            id="unknown-model",
        ),
        P(
            10,
            "    models: {resnet5: 4}",
            10,
            "nodes.1.models",
            "did you mean 'resnet50'",
            id="unknown-model-2",
        ),
        P(9, None, 8, "nodes.1.device", "Field required", id="missing-device"),
        P(5, "    count: two", 5, "nodes.0.count", "integer", id="count-not-int"),
        P(5, "    count: 0", 5, "nodes.0.count", "greater than or equal to 1", id="count-zero"),
        P(6, "    models: {resnet18: 0}", 6, "nodes.0.models", "resnet18", id="zero-instances"),
        P(6, "    models: {}", 6, "nodes.0.models", "at least 1", id="no-models"),
        P(6, "    models: [resnet18]", 6, "nodes.0.models", "dictionary", id="models-a-list"),
        P(
            14,
            "    bandwidth_bytes_per_s: -1.0",
            14,
            "links.0.bandwidth_bytes_per_s",
            "greater than 0",
            id="negative-bandwidth",
        ),
        P(
            17,
            "    bandwidth_bytes_per_s: 0",
            17,
            "links.1.bandwidth_bytes_per_s",
            "greater than 0",
            id="zero-bandwidth",
        ),
        P(
            14,
            "    bandwidth_bytes_per_s: fast",
            14,
            "links.0.bandwidth_bytes_per_s",
            "number",
            id="bandwidth-not-a-number",
        ),
        P(
            15,
            "    rtt_s: -0.001",
            15,
            "links.0.rtt_s",
            "greater than or equal to 0",
            id="negative-rtt",
        ),
        P(15, None, 13, "links.0.rtt_s", "Field required", id="missing-rtt"),
        P(19, "    shared: maybe", 19, "links.1.shared", "boolean", id="shared-not-bool"),
        P(
            14,
            "    bandwith_bytes_per_s: 1.0",
            14,
            "links.0.bandwith_bytes_per_s",
            "Extra inputs",
            id="misspelt-field",
        ),
        P(7, "    lnk: lan", 7, "nodes.0.lnk", "Extra inputs", id="misspelt-link"),
    ],
)
def test_cluster_errors_name_file_line_and_field(
    tmp_path: Path, catalog: Catalog, line: int, new: str | None, at: int, field: str, words: str
) -> None:
    msg = cluster_error(tmp_path, edit(CLUSTER, line, new), catalog)
    assert f"FILE:{at}: {field}:" in msg
    assert words in msg


@pytest.mark.parametrize(
    ("line", "new", "words"),
    [
        (8, "  - id: nano-1", "'nano-1' appears twice"),  # clashes with nano's expansion
        (7, "    link: lann", "'lann'"),
        (16, "  - id: lan", "unique"),
    ],
    ids=["duplicate-node", "unknown-link", "duplicate-link"],
)
def test_cluster_reference_errors(
    tmp_path: Path, catalog: Catalog, line: int, new: str, words: str
) -> None:
    msg = cluster_error(tmp_path, edit(CLUSTER, line, new), catalog)
    assert msg.startswith("FILE:")
    assert words in msg


def test_interference_kind_is_checked(tmp_path: Path, catalog: Catalog) -> None:
    msg = cluster_error(tmp_path, CLUSTER + "interference: {kind: magic}\n", catalog)
    assert "FILE:20: interference.kind:" in msg
    assert "'parametric'" in msg


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (edit(CLUSTER, 6, "    models: {resnet18: 1, mobilenet_v2: 2"), 7),  # seen on the next
        (edit(CLUSTER, 4, "   device: jetson-nano-4gb"), 4),
        ("name: x\nnodes: [\n", 3),
        ("a: b: c\n", 1),
    ],
    ids=["unclosed-flow", "bad-indent", "unclosed-list", "nested-colon"],
)
def test_invalid_yaml_names_the_line(
    tmp_path: Path, catalog: Catalog, text: str, line: int
) -> None:
    msg = cluster_error(tmp_path, text, catalog)
    assert re.match(rf"FILE:{line}: not valid YAML: ", msg), msg


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty"), ("# nothing\n", "empty"), ("- a\n- b\n", "mapping"), ("just text", "mapping")],
)
def test_files_that_are_not_a_mapping(
    tmp_path: Path, catalog: Catalog, text: str, words: str
) -> None:
    assert words in cluster_error(tmp_path, text, catalog)
    assert words in scenario_error(tmp_path, text)


def test_unreadable_files(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Cluster.load(tmp_path / "missing.yaml", catalog)
    with pytest.raises(ConfigError, match="cannot read"):
        ScenarioConfig.load_file(tmp_path / "missing.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00nodes")
    with pytest.raises(ConfigError, match=r"binary\.yaml"):
        Cluster.load(tmp_path / "binary.yaml", catalog)


# --------------------------------------------------------------------------- scenario errors
@pytest.mark.parametrize(
    ("line", "new", "at", "field", "words"),
    [
        P(3, None, 1, "requests", "Field required", id="missing-requests"),
        P(3, "requests: 0", 3, "requests", "greater than or equal to 1", id="zero-requests"),
        P(3, "requests: many", 3, "requests", "integer", id="requests-not-int"),
        P(4, "rate_rps: -2", 4, "rate_rps", "greater than 0", id="negative-rate"),
        P(6, "  kind: weibull", 6, "arrivals", "'poisson', 'mmpp', 'trace'", id="unknown-kind"),
        P(
            8,
            "  resnet18: {weight: 0, slo_s: 0.08}",
            8,
            "models.resnet18.weight",
            "greater than 0",
            id="zero-weight",
        ),
        P(
            8,
            "  resnet18: {weight: 1, slo_s: -1}",
            8,
            "models.resnet18.slo_s",
            "greater than 0",
            id="negative-slo",
        ),
        P(
            8,
            "  resnet18: {weight: 1}",
            8,
            "models.resnet18.slo_s",
            "Field required",
            id="missing-slo",
        ),
        P(
            9,
            "  resnet50: {weight: 1, slo_s: 1, input_bytes: -5}",
            9,
            "models.resnet50.input_bytes",
            "greater than or equal to 0",
            id="negative-bytes",
        ),
        P(
            9,
            "  resnet50: {weight: 1, slo_s: 1, sla_s: 2}",
            9,
            "models.resnet50.sla_s",
            "Extra inputs",
            id="misspelt-field",
        ),
        P(2, "seed: first", 2, "seed", "integer", id="seed-not-int"),
    ],
)
def test_scenario_errors_name_file_line_and_field(
    tmp_path: Path, line: int, new: str | None, at: int, field: str, words: str
) -> None:
    msg = scenario_error(tmp_path, edit(SCENARIO, line, new))
    assert f"FILE:{at}: {field}:" in msg
    assert words in msg


@pytest.mark.parametrize(
    "text",
    [
        SCENARIO + "load: 0.5\n",  # both
        edit(SCENARIO, 4, None),  # neither
        edit(SCENARIO, 6, "  kind: trace\n  path: t.csv"),  # a trace with a rate
    ],
    ids=["both", "neither", "trace-with-rate"],
)
def test_exactly_one_rate(tmp_path: Path, text: str) -> None:
    msg = scenario_error(tmp_path, text)
    assert "rate_rps" in msg and "load" in msg
    assert msg.startswith("FILE:1:")


@pytest.mark.parametrize(
    ("states", "words"),
    [
        ("[{rate_factor: 1, mean_dwell_s: 1}]", "at least 2"),
        (
            "[{rate_factor: 0, mean_dwell_s: 1}, {rate_factor: 0, mean_dwell_s: 2}]",
            "rate_factor > 0",
        ),
        (
            "[{rate_factor: 1, mean_dwell_s: 0}, {rate_factor: 1, mean_dwell_s: 2}]",
            "greater than 0",
        ),
    ],
)
def test_mmpp_states_are_checked(tmp_path: Path, states: str, words: str) -> None:
    text = edit(SCENARIO, 6, f"  kind: mmpp\n  states: {states}")
    msg = scenario_error(tmp_path, text)
    assert "arrivals" in msg and words in msg


def test_negative_seed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="seed"):
        ScenarioConfig.parse(edit(SCENARIO, 2, "seed: -1"))


def test_deeply_nested_yaml_is_a_config_error() -> None:
    text = "nodes: " + "[" * 1500 + "]" * 1500
    with pytest.raises(ConfigError):
        Cluster.parse(text, toy_catalog(), source="deep.yaml")


NON_FINITE_FIELDS = [
    P("cluster", 14, "    bandwidth_bytes_per_s: .inf", id="link-bandwidth"),
    P("cluster", 15, "    rtt_s: .inf", id="link-rtt"),
    P("cluster", 20, "interference: {alpha_scale: .inf}", id="alpha-scale"),
    P("scenario", 4, "rate_rps: .inf", id="rate"),
    P("scenario", 4, "load: .inf", id="load"),
    P("scenario", 8, "  resnet18: {weight: .inf, slo_s: 0.08}", id="weight"),
    P(
        "scenario",
        6,
        "  kind: mmpp\n  states: [{rate_factor: .inf, mean_dwell_s: 1}, "
        "{rate_factor: 1, mean_dwell_s: 1}]",
        id="mmpp-rate-factor",
    ),
    P(
        "scenario",
        6,
        "  kind: mmpp\n  states: [{rate_factor: 1, mean_dwell_s: .inf}, "
        "{rate_factor: 1, mean_dwell_s: 1}]",
        id="mmpp-dwell",
    ),
]


@pytest.mark.parametrize(("kind", "line", "new"), NON_FINITE_FIELDS)
def test_non_finite_numbers_are_config_errors(
    tmp_path: Path, catalog: Catalog, kind: str, line: int, new: str
) -> None:
    if kind == "cluster":
        text = edit(CLUSTER + "interference: {}\n", line, new)
        msg = cluster_error(tmp_path, text, catalog)
    else:
        msg = scenario_error(tmp_path, edit(SCENARIO, line, new))
    assert msg.startswith("FILE:")


# ------------------------------------------------------------------------ property tests
TOY = toy_catalog()
TOY_CLUSTER: dict[str, Any] = {
    "name": "toy",
    "nodes": [
        {"id": "fast", "device": "fast", "count": 2, "models": {"a": 2, "b": 1}, "link": "lan"},
        {"id": "cloud", "device": "cloud", "models": {"a": 4}, "link": "wan"},
    ],
    "links": [
        {"id": "lan", "bandwidth_bytes_per_s": 125e6, "rtt_s": 0.0005},
        {"id": "wan", "bandwidth_bytes_per_s": 2.5e6, "rtt_s": 0.04, "shared": True},
    ],
    "interference": {"kind": "parametric", "alpha_scale": 1.0},
}
TOY_SCENARIO: dict[str, Any] = {
    "name": "s",
    "seed": 1,
    "requests": 10,
    "models": {"a": {"weight": 1, "slo_s": 0.1, "input_bytes": 100}},
    "arrivals": {
        "kind": "mmpp",
        "states": [{"rate_factor": 1, "mean_dwell_s": 1}, {"rate_factor": 2, "mean_dwell_s": 1}],
    },
    "rate_rps": 10,
}

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats()
    | _text
    | st.sampled_from(["fast", "cloud", "a", "b", "lan", "wan", "poisson", "mmpp", "trace"])
)
_keys = _text | st.sampled_from(["nodes", "links", "id", "device", "models", "requests", "kind"])
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=16,
)


def _parse_both(text: str) -> None:
    for parse in (lambda: Cluster.parse(text, TOY), lambda: ScenarioConfig.parse(text)):
        with contextlib.suppress(ConfigError):
            parse()


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutated(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> str:
    data = copy.deepcopy(base)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return yaml.safe_dump(data)


PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_the_mutation_bases_are_valid() -> None:
    Cluster.parse(yaml.safe_dump(TOY_CLUSTER), TOY)
    ScenarioConfig.parse(yaml.safe_dump(TOY_SCENARIO))


@PROPERTY
@given(_values)
def test_arbitrary_data_parses_or_raises_config_error(data: Any) -> None:
    _parse_both(yaml.safe_dump(data))


@PROPERTY
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_config_error(text: str) -> None:
    _parse_both(text)


@PROPERTY
@given(st.sampled_from(_paths(TOY_CLUSTER)), _values)
def test_cluster_with_one_field_mutated(path: tuple[Any, ...], value: Any) -> None:
    with contextlib.suppress(ConfigError):
        Cluster.parse(_mutated(TOY_CLUSTER, path, value), TOY)


@PROPERTY
@given(st.sampled_from(_paths(TOY_SCENARIO)), _values)
def test_scenario_with_one_field_mutated(path: tuple[Any, ...], value: Any) -> None:
    with contextlib.suppress(ConfigError):
        ScenarioConfig.parse(_mutated(TOY_SCENARIO, path, value))
