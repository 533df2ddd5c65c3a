"""Per-layer FLOPs and output sizes of a torch model, measured with forward hooks.

One multiply-add counts as **two** FLOPs (the convention of ``catalog/data/models.yaml``), so
the totals are twice the "GFLOPS" (really GMACs) that torchvision's model pages list.

What is counted, per sample (the hooks see a batch-1 forward pass):

* ``Conv1d/2d/3d``: ``2 * Cout * prod(out spatial) * Cin/groups * prod(kernel)``, plus
  ``Cout * prod(out spatial)`` when the layer has a bias.
* ``ConvTranspose1d/2d/3d``: ``2 * Cin * prod(in spatial) * Cout/groups * prod(kernel)``, plus
  one per output element for a bias.
* ``Linear`` and its subclasses: ``2 * in_features * out_features`` per token,
  where every position of the leading non-batch dimensions is a token, plus ``out_features`` per
  token for a bias.
* ``MultiheadAttention``, hooked as one layer (its functional forward reads ``out_proj``'s weights
  directly, so the child module never runs): the q, k and v projections
  (``2*L*E*E + 2*S*E*kdim + 2*S*E*vdim``), the scores ``Q·Kᵀ`` (``2*L*S*E`` over all heads), the
  weighted sum ``A·V`` (``2*L*S*E``), the output projection (``2*L*E*E``) and the biases
  (``L*E + 2*S*E`` and ``L*E``). The softmax over the scores is not counted.
* Every other leaf module (normalisation, activations, pooling, dropout, softmax, identity) counts
  0, and functional operations outside modules (residual additions, ``torch.flatten``, channel
  shuffles, ViT's class token and position embedding) are not seen. This matches the published
  MAC counts, which count only convolutions, linear layers and matrix products.

Leaf modules are modules without children, plus ``MultiheadAttention`` (whose children are then
skipped). One record is made per *call*, in execution order, so a module that runs twice (ResNet
reuses one ReLU in each block) appears twice under the same name. ``output_bytes`` is the
float32 size of the layer's output for one sample, whatever the dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LayerCount:
    """One leaf-module call: its name, type, FLOPs and float32 output size for one sample."""

    name: str
    type: str
    flops: int
    output_bytes: int


def _tensors(obj: Any) -> list[Any]:
    """Every tensor in a (nested) module output."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list | tuple):
        return [t for item in obj for t in _tensors(item)]
    return []


def _conv_flops(module: Any, x: Any, y: Any) -> int:
    import torch.nn as nn

    batch = y.shape[0]
    out_per_sample = y.numel() // batch
    kernel = math.prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        in_per_sample = x.numel() // batch  # Cin * prod(in spatial)
        flops = 2 * in_per_sample * (module.out_channels // module.groups) * kernel
    else:
        flops = 2 * out_per_sample * (module.in_channels // module.groups) * kernel
    return flops + (out_per_sample if module.bias is not None else 0)


def _linear_flops(module: Any, y: Any) -> int:
    out_per_sample = y.numel() // y.shape[0] if y.dim() > 1 else y.numel()
    flops = 2 * out_per_sample * module.in_features
    return flops + (out_per_sample if module.bias is not None else 0)


def _mha_flops(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    query = args[0] if len(args) > 0 else kwargs["query"]
    key = args[1] if len(args) > 1 else kwargs.get("key", query)
    seq_dim = 1 if (module.batch_first and query.dim() == 3) else 0
    tgt, src = query.shape[seq_dim], key.shape[seq_dim]
    e = module.embed_dim
    flops = 2 * tgt * e * e + 2 * src * e * module.kdim + 2 * src * e * module.vdim  # q, k, v
    flops += 2 * tgt * src * e + 2 * tgt * src * e  # Q·Kᵀ and A·V over all heads
    flops += 2 * tgt * e * e  # out_proj
    if module.in_proj_bias is not None:
        flops += tgt * e + 2 * src * e
    if module.out_proj.bias is not None:
        flops += tgt * e
    return flops


def _flops(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> int:
    import torch.nn as nn

    if isinstance(module, nn.MultiheadAttention):
        return _mha_flops(module, args, kwargs)
    if isinstance(module, nn.modules.conv._ConvNd) and args:
        return _conv_flops(module, args[0], output)
    if isinstance(module, nn.Linear) and _tensors(output):
        return _linear_flops(module, _tensors(output)[0])
    return 0


def _leaves(model: Any) -> list[tuple[str, Any]]:
    """Leaf modules by qualified name; ``MultiheadAttention`` is a leaf and hides its children."""
    import torch.nn as nn

    found: list[tuple[str, Any]] = []

    def walk(prefix: str, module: Any) -> None:
        children = list(module.named_children())
        if not children or isinstance(module, nn.MultiheadAttention):
            found.append((prefix or type(module).__name__, module))
            return
        for child_name, child in children:
            walk(f"{prefix}.{child_name}" if prefix else child_name, child)

    walk("", model)
    return found


def count_layers(model: Any, sample: Any) -> tuple[list[LayerCount], Any]:
    """Run ``model`` once on a batch-1 ``sample`` and record every leaf-module call.

    Args:
        model: a ``torch.nn.Module`` in eval mode.
        sample: an input tensor with batch size 1.

    Returns:
        The records in execution order (see the module docstring for what is counted) and the
        model's output for ``sample``.
    """
    import torch

    if sample.shape[0] != 1:
        raise ValueError(f"count_layers needs a batch-1 sample, got shape {tuple(sample.shape)}")
    records: list[LayerCount] = []

    def hook_for(name: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            size = sum(t.numel() for t in _tensors(output)) * 4  # float32 bytes, batch 1
            flops = _flops(module, args, kwargs, output)
            records.append(LayerCount(name, type(module).__name__, int(flops), int(size)))

        return hook

    handles = [
        m.register_forward_hook(hook_for(name), with_kwargs=True) for name, m in _leaves(model)
    ]
    try:
        with torch.no_grad():
            output = model(sample)
    finally:
        for h in handles:
            h.remove()
    return records, output
