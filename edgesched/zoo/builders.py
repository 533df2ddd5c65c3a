"""Builders for zoo models that need more than a torchvision constructor.

Detection models are wrapped so that they take one batch tensor and return the raw head outputs
(box regressions and class logits) without post-processing, which is what ONNX export with a
dynamic batch axis and per-batch timing need. Nothing is downloaded: weights are random.
"""

from __future__ import annotations

from typing import Any


def ssdlite320_raw() -> Any:
    """SSDlite320 on MobileNetV3-Large: backbone and head, raw outputs, no NMS."""
    import torch
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large as build

    class RawSSD(torch.nn.Module):
        """Backbone + head of an SSD model; returns (box regression, class logits)."""

        def __init__(self) -> None:
            super().__init__()
            model = build(weights=None, weights_backbone=None)
            self.backbone = model.backbone
            self.head = model.head

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            feats = list(self.backbone(x).values())
            out = self.head(feats)
            return out["bbox_regression"], out["cls_logits"]

    return RawSSD()
