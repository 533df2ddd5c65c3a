"""The serving: section of cluster.yaml: defaults, per-node options, errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesched.core.cluster import Cluster
from edgesched.errors import ConfigError

BASE = """
nodes:
  - {id: pi, device: raspberry-pi-5, count: 2, models: {mobilenet_v2: 1}}
  - {id: gpu, device: cloud-a100, models: {mobilenet_v2: 2, resnet50: 1}}
"""


def test_no_section_means_defaults() -> None:
    c = Cluster.parse(BASE)
    assert c.serving.batching == {} and c.serving.offload == {}
    opts = c.node_serving(c.nodes[0])
    assert (opts.cpus, opts.threads) == (None, None)
    assert (opts.backend, opts.device) == ("onnxruntime", "cpu")
    assert c.model_file("mobilenet_v2") == "mobilenet_v2"  # the zoo name


def test_node_options_by_id_or_by_entry(tmp_path: Path) -> None:
    text = (
        BASE
        + """
serving:
  model_files: {resnet50: models/r50.onnx}
  nodes:
    pi: {cpus: [0], threads: 1}
    pi-1: {cpus: [1]}
    gpu: {backend: torch, device: cuda}
  batching:
    mobilenet_v2: {max_batch_size: 4}
"""
    )
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    c = Cluster.load(path)
    by_id = {n.id: c.node_serving(n) for n in c.nodes}
    assert by_id["pi-0"].cpus == [0] and by_id["pi-0"].threads == 1  # the entry's
    assert by_id["pi-1"].cpus == [1] and by_id["pi-1"].threads is None  # its own
    assert (by_id["gpu"].backend, by_id["gpu"].device) == ("torch", "cuda")
    assert c.model_file("resnet50") == str(tmp_path / "models" / "r50.onnx")
    assert c.serving.batching["mobilenet_v2"].max_queue_delay_ms == 2.0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("batching: {vit_b_16: {}}", "serving.batching names model 'vit_b_16', which no node"),
        ("offload: {mobilenet_v2: {threshold: 0.5, cloud_model: yolov8n}}", "deployed on no node"),
        ("offload: {mobilenet_v2: {threshold: 1.5}}", "less than or equal to 1"),
        ("nodes: {px: {threads: 1}}", "unknown node 'px'"),
        ("batching: {mobilenet_v2: {max_batch_size: 0}}", "greater than or equal to 1"),
        ("nodes: {gpu: {backend: tensorflow}}", "onnxruntime"),
        ("slo_s: {yolov8n: 0.1}", "serving.slo_s names model 'yolov8n'"),
        ("slo_s: {mobilenet_v2: 0}", "greater than 0"),
    ],
)
def test_errors_name_the_field(section: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Cluster.parse(BASE + "serving:\n  " + section + "\n")


def test_the_example_serving_cluster_loads() -> None:
    c = Cluster.load(Path(__file__).parents[2] / "examples" / "serve-cluster.yaml")
    assert [n.id for n in c.nodes] == ["pi-0", "pi-1", "cloud"]
    assert c.node_serving(c.nodes[1]).threads == 1
    assert c.serving.offload["digits-edge"].cloud_model == "digits-cloud"
