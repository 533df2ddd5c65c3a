"""Serving: the KServe v2 / Open Inference Protocol codec (more frontends to come).

Importing this package imports numpy and json only.
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
)

__all__ = [
    "DATATYPES",
    "ELEMENT_SIZES",
    "GRPC_CODES",
    "HEADER_LENGTH",
    "TRITON_TYPES",
    "InferRequest",
    "InferResponse",
    "InferTensor",
    "ProtocolError",
    "RequestedOutput",
    "TensorSpec",
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
]
