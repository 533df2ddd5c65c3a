"""A confidence sample measured now by running the real digits models (shared by the session)."""

from __future__ import annotations

import pytest

from edgesched.core.confidence import ConfidenceSample


@pytest.fixture(scope="session")
def measured() -> ConfidenceSample:
    """Both digits models run in onnxruntime on the 450 held-out images, once each.

    The ONNX exports come from the default zoo cache, as in ``tests/serve``: instant once the
    models are trained and exported there.
    """
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from edgesched.offload.measure import measure_digits

    return measure_digits(repeats=1, command="tests/offload/conftest.py")
