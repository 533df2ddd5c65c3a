"""Prometheus ``/metrics``: a real server on 127.0.0.1, real HTTP clients, the real text parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgesched.serve import encode_request
from tests.serve.test_server import (
    MODEL,
    Served,
    _serve,
    _shutdown,
    batch_of,
    http,
    infer,
    onnx_file,  # noqa: F401  (fixture)
)

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

NODES = ("left", "right")


@pytest.fixture(scope="module")
def served(onnx_file: Path) -> Iterator[Served]:  # noqa: F811
    s = _serve(onnx_file, policy="least-loaded")
    yield s
    _shutdown(s)


def scrape(url: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """GET /metrics; family name → its samples (name, labels, value)."""
    status, headers, raw = http(f"{url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(raw.decode())
    }


def value(fams: dict, sample: str, **labels: str) -> float:
    """Sum of the samples named ``sample`` whose labels include ``labels``."""
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    return sum(
        v
        for name, lab, v in fams.get(family, [])
        if name == sample and labels.items() <= lab.items()
    )


def test_metrics_count_good_and_bad_requests(served: Served) -> None:
    url = served.url
    for i in range(5):
        assert infer(url, batch_of(1 + i % 2, seed=i))[0] == 200
    wrong_shape = encode_request({"input0": batch_of(1)[:, :, :4]})[0]
    for _ in range(3):
        assert http(f"{url}/v2/models/{MODEL}/infer", wrong_shape)[0] == 400
    for _ in range(2):
        assert http(f"{url}/v2/models/resnet9/infer", b"{}")[0] == 404
    served.server.max_payload_bytes = 2**10
    try:
        assert http(f"{url}/v2/models/{MODEL}/infer", b"x" * (2**10 + 1))[0] == 413
    finally:
        served.server.max_payload_bytes = 64 * 2**20

    fams = scrape(url)
    assert value(fams, "edgesched_requests_total", model=MODEL, code="200") == 5
    assert value(fams, "edgesched_requests_total", model=MODEL, code="400") == 3
    assert value(fams, "edgesched_requests_total", model="", node="", code="404") == 2
    # the good ones were routed to a node; the bad ones never were
    assert {lab["node"] for _, lab, _ in fams["edgesched_requests"] if lab["code"] == "200"} <= set(
        NODES
    ) and value(fams, "edgesched_requests_total", node="", code="400") == 3
    assert value(fams, "edgesched_errors_total", model=MODEL, reason="bad_request") == 3
    assert value(fams, "edgesched_errors_total", model="", reason="not_found") == 2
    assert value(fams, "edgesched_errors_total", model=MODEL, reason="too_large") == 1

    latency = "edgesched_request_latency_seconds"
    for code, n in (("200", 5), ("400", 3), ("404", 2), ("413", 1)):
        assert value(fams, "edgesched_requests_total", code=code) == n
    assert value(fams, latency + "_count", model=MODEL) == 9
    assert value(fams, latency + "_count", model="") == 2
    assert value(fams, latency + "_count") == value(fams, "edgesched_requests_total") == 11
    inf_bucket = [v for n, lab, v in fams[latency] if n.endswith("_bucket") and lab["le"] == "+Inf"]
    assert sum(inf_bucket) == 11

    ex = "edgesched_execution_seconds"
    assert value(fams, ex + "_count", model=MODEL) == 5  # only the ones that ran
    assert 0 < value(fams, ex + "_sum", model=MODEL) < value(fams, latency + "_sum", model=MODEL)
    assert value(fams, "edgesched_batch_size_count", model=MODEL) == 5
    assert value(fams, "edgesched_batch_size_sum", model=MODEL) == 1 + 2 + 1 + 2 + 1

    for node in NODES:
        assert ("edgesched_in_flight", {"node": node}, 0.0) in fams["edgesched_in_flight"]
        assert value(fams, "edgesched_worker_restarts_total", node=node) == 0
    assert value(fams, "edgesched_offloads_total", model=MODEL) == 0
    assert "edgesched_offloads" in fams and "edgesched_node_power_watts" in fams


def test_two_servers_do_not_share_counters(served: Served, onnx_file: Path) -> None:  # noqa: F811
    before = value(scrape(served.url), "edgesched_requests_total")
    other = _serve(onnx_file, policy="least-loaded")
    try:
        assert value(scrape(other.url), "edgesched_requests_total") == 0
        for _ in range(2):
            assert infer(other.url, batch_of(1))[0] == 200
        assert value(scrape(other.url), "edgesched_requests_total", code="200") == 2
        assert value(scrape(served.url), "edgesched_requests_total") == before
    finally:
        _shutdown(other)


def test_set_power_and_restart_are_exposed() -> None:
    from edgesched.serve.metrics import ServerMetrics, reason_of

    m = ServerMetrics(["a"], ["n0"])
    m.set_power("n0", 7.5, "estimate")
    m.restart("n0", 2)
    m.sync_restarts("n0", 2)  # already counted
    m.sync_restarts("n0", 3)  # one more
    m.set_in_flight("n0", 3)
    m.observe_request("a", "n0", 200, 0.003, 0.001, 4)
    payload, content_type = m.render()
    assert content_type.startswith("text/plain")
    fams = {
        f.name: [(s.name, s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(payload.decode())
    }
    assert value(fams, "edgesched_node_power_watts", node="n0", source="estimate") == 7.5
    assert value(fams, "edgesched_worker_restarts_total", node="n0") == 3
    assert value(fams, "edgesched_in_flight", node="n0") == 3
    assert value(fams, "edgesched_execution_seconds_count", model="a", node="n0") == 1
    assert (reason_of(503), reason_of(418)) == ("unavailable", "http_418")


def test_the_machine_power_meter_reaches_the_metrics(tmp_path) -> None:
    """A RAPL meter (on a fake powercap tree) is read into the ``host`` power gauge."""
    import time

    from edgesched.profile.power import RaplMeter
    from tests.profile.test_power import rapl_tree
    from tests.runtime.conftest import export, tiny_module
    from tests.serve.test_server import _serve, _shutdown

    zone = rapl_tree(tmp_path / "powercap", 0)
    meter = RaplMeter(tmp_path / "powercap")
    (zone / "energy_uj").write_text("30000000\n")  # 30 J since the meter opened
    s = _serve(export(tiny_module(), tmp_path / "tiny.onnx", dynamic=True), power_meter=meter)
    try:
        deadline = time.monotonic() + 10
        while 'edgesched_node_power_watts{node="host",source="rapl"}' not in (
            text := s.server.metrics.render()[0].decode()
        ):
            assert time.monotonic() < deadline, "no power reading within 10 s"
            time.sleep(0.1)
        line = next(ln for ln in text.splitlines() if ln.startswith("edgesched_node_power_watts"))
        assert float(line.split()[-1]) > 0
    finally:
        _shutdown(s)


def test_in_flight_gauge_reads_the_live_state_at_scrape_time(served: Served) -> None:
    async def dispatch() -> None:  # as the core does when it sends a request to node 0
        served.server.core._live.dispatch(0, 0)  # type: ignore[union-attr]

    async def finish() -> None:
        served.server.core._live.finish(0, 0, None)  # type: ignore[union-attr]

    served.call(dispatch())
    try:
        assert value(scrape(served.url), "edgesched_in_flight", node=NODES[0]) == 1
        assert value(scrape(served.url), "edgesched_in_flight", node=NODES[1]) == 0
    finally:
        served.call(finish())
    assert value(scrape(served.url), "edgesched_in_flight", node=NODES[0]) == 0
