"""Functions with typed arguments through the Open Inference Protocol: one input tensor per argument.

Metadata comes from the function's signature (its JSON schema): ``int`` is ``INT64``, ``float`` ``FP64``,
``bool`` ``BOOL``, ``str`` ``BYTES``, each of shape ``[1]``; a list of one of those is a tensor of shape ``[-1]``
(any other argument is ``BYTES`` holding JSON text). A request's tensors become the keyword arguments (a ``[1]``
tensor its one value, a list argument the tensor's values, nested by its shape), checked then as any call is
(422 for a misfit); the result comes back as one ``result`` tensor (one tensor per key for a dict).
"""

from __future__ import annotations

import json
from typing import Any

from ..exceptions import InvalidInputError
from .records import InferRequest, Tensor, TensorMetadata
from .tensors import _nest, _tensor, _values, output_tensors

__all__ = ["function_arguments", "function_outputs", "function_tensors"]

RESULT = "result"
_SCALAR = {"integer": "INT64", "number": "FP64", "boolean": "BOOL", "string": "BYTES"}


def _datatype(schema: dict[str, Any]) -> tuple[str, list[int]]:
    kind = schema.get("type")
    if kind in _SCALAR:
        return _SCALAR[kind], [1]
    if kind == "array":
        items = (schema.get("items") or {}).get("type")
        return _SCALAR.get(str(items), "FP64" if items is None else "BYTES"), [-1]
    return "BYTES", [1]


def function_tensors(request_schema: dict[str, Any] | None) -> list[TensorMetadata]:
    """The input tensors of a function: one per argument of its signature, in order."""
    properties = (request_schema or {}).get("properties") or {}
    out = []
    for name, schema in properties.items():
        datatype, shape = _datatype(schema or {})
        out.append(TensorMetadata(name, datatype, shape))  # type: ignore[arg-type]
    return out


def function_arguments(
    request: InferRequest, request_schema: dict[str, Any] | None, binary: dict[str, list[Any]]
) -> dict[str, Any]:
    """The keyword arguments an inference request stands for; raises InvalidInputError (400) for a tensor that
    is malformed or names no argument (the signature itself is checked by the call, 422)."""
    properties = (request_schema or {}).get("properties") or {}
    open_ended = bool((request_schema or {}).get("additionalProperties"))
    names = [t.name for t in request.inputs]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"input names repeat: {names}", "inputs")
    arguments: dict[str, Any] = {}
    for tensor in request.inputs:
        schema = properties.get(tensor.name)
        if schema is None and not open_ended:
            raise InvalidInputError(
                f"input {tensor.name!r} is not an argument of this function (it takes {', '.join(properties) or 'none'})",
                f"inputs.{tensor.name}",
            )
        flat = _values(tensor, binary.get(tensor.name, tensor.data))
        kind = (schema or {}).get("type")
        if kind == "array":
            arguments[tensor.name] = _nest(flat, tensor.shape)
        elif len(flat) != 1:
            raise InvalidInputError(
                f"input {tensor.name!r} is one value: send shape [1], not {tensor.shape}", f"inputs.{tensor.name}"
            )
        elif tensor.datatype == "BYTES" and kind not in ("string", None):
            try:
                arguments[tensor.name] = json.loads(flat[0])
            except ValueError:
                raise InvalidInputError(f"input {tensor.name!r} must hold JSON text", f"inputs.{tensor.name}") from None
        else:
            arguments[tensor.name] = flat[0]
    return arguments


def function_outputs(result: Any, wanted: list[str] | None) -> list[Tensor]:
    """The output tensors of a function's ``result``: one ``result`` tensor, or one per key of a dict."""
    if isinstance(result, dict):
        return output_tensors(result, wanted)
    tensors = [_tensor(RESULT, result if isinstance(result, list) else [result])]
    if wanted and wanted != [RESULT]:
        raise InvalidInputError(f"outputs {wanted} are not answered by this function: it gives ['result']", "outputs")
    return tensors
