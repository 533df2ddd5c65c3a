"""Serving: the KServe v2 / Open Inference Protocol codec, the node workers and the server.

Importing this package imports numpy, json and multiprocessing only (no aiohttp, onnxruntime or
torch): :class:`InferenceServer` is loaded on first use.
"""

from __future__ import annotations

from edgesched.serve._datatypes import (
    DATATYPES,
    ELEMENT_SIZES,
    TRITON_TYPES,
    TensorSpec,
    datatype_of,
    model_config,
    model_metadata,
)
from edgesched.serve.protocol import (
    GRPC_CODES,
    HEADER_LENGTH,
    InferRequest,
    InferResponse,
    InferTensor,
    ProtocolError,
    RequestedOutput,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    error_body,
    http_status,
    model_not_found,
    overloaded,
    unavailable,
)
from edgesched.serve.worker import ModelInfo, NodeWorker, WorkerDied, WorkerError, WorkerFuture

__all__ = [
    "DATATYPES",
    "ELEMENT_SIZES",
    "GRPC_CODES",
    "HEADER_LENGTH",
    "TRITON_TYPES",
    "InferRequest",
    "InferResponse",
    "InferTensor",
    "InferenceServer",
    "ModelInfo",
    "NodeWorker",
    "ProtocolError",
    "RequestedOutput",
    "TensorSpec",
    "WorkerDied",
    "WorkerError",
    "WorkerFuture",
    "datatype_of",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "error_body",
    "http_status",
    "model_config",
    "model_metadata",
    "model_not_found",
    "overloaded",
    "unavailable",
]


def __getattr__(name: str) -> object:
    if name == "InferenceServer":  # lazy: the server module pulls in the cluster and policies
        from edgesched.serve.server import InferenceServer

        return InferenceServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
