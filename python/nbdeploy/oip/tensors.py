"""Open Inference Protocol tensors <-> nbdeploy's model payloads, in plain Python (numpy only for binary data).

Requests: each input tensor is checked (its ``data`` holds ``prod(shape)`` values of its ``datatype``, 400
otherwise) and turned into an MLflow payload that the model's signature then checks (422 for a misfit, as for
``/predict``): for a DataFrame signature, inputs named after its columns become columns (shape ``[n]`` or
``[n, 1]``); a single other input is read as the whole table (``[n, k]``); for an array signature (or none)
the single input is the array. Answers: predictions become one ``predictions`` tensor (its datatype from the
values), or one tensor per column when the model answers a table.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from typing import Any

from ..exceptions import InvalidInputError
from .records import InferRequest, Tensor, TensorInput, TensorMetadata

__all__ = ["datatype_of_dtype", "decode_binary", "output_tensors", "request_payload", "signature_tensors"]

OUTPUT = "predictions"
_NUMPY = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def datatype_of_dtype(dtype: str) -> str:
    """The OIP datatype of a numpy/pandas dtype name (``float64`` -> ``FP64``; text and others -> ``BYTES``)."""
    name = str(dtype).lower()
    if name in ("bool", "boolean"):
        return "BOOL"
    for prefix, kind in (("float", "FP"), ("uint", "UINT"), ("int", "INT")):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return f"{kind}{name[len(prefix) :]}"
    if name.startswith("int") or name.startswith("Int"):
        return "INT64"
    return "BYTES"


def signature_tensors(signature: dict[str, Any] | None) -> list[TensorMetadata]:
    """The input tensors a signature describes: one per DataFrame column, or the array."""
    if not signature:
        return []
    if signature.get("type") == "dataframe":
        return [TensorMetadata(c["name"], _dt(c["dtype"]), [-1]) for c in signature["columns"]]
    return [TensorMetadata("input-0", _dt(signature.get("dtype", "")), list(signature.get("shape") or [-1]))]


def _dt(dtype: str) -> Any:
    return datatype_of_dtype(dtype)


def _flatten(data: Any, out: list[Any]) -> None:
    if isinstance(data, list):
        for item in data:
            _flatten(item, out)
    else:
        out.append(data)


def _flat(data: Any) -> list[Any]:
    """``data``'s values, flat, row-major (what :func:`_flatten` gives), without a call per value for the usual
    flat list or list of rows."""
    if data is None:
        return []
    if not isinstance(data, list):
        return [data]
    if not any(issubclass(kind, list) for kind in set(map(type, data))):
        return list(data)
    if all(type(row) is list for row in data):
        flat = list(itertools.chain.from_iterable(data))
        if not any(issubclass(kind, list) for kind in set(map(type, flat))):
            return flat
    out: list[Any] = []
    _flatten(data, out)
    return out


def _all_valid(flat: list[Any], datatype: str) -> bool:
    """Whether every value is :func:`_valid` for ``datatype``, decided by their types at once (``False`` may also
    mean: look value by value)."""
    kinds = set(map(type, flat))
    if datatype == "BOOL":
        return kinds <= {bool}
    if datatype == "BYTES":
        return kinds <= {str}
    if datatype.startswith("UINT"):
        return kinds <= {int} and (not flat or min(flat) >= 0)
    if datatype.startswith("INT"):
        return kinds <= {int}
    if not kinds <= {int, float}:
        return False
    try:
        return float not in kinds or all(map(math.isfinite, flat))
    except OverflowError:  # an int past float's range: finite, but let _valid say so
        return False


def _valid(value: Any, datatype: str) -> bool:
    if datatype == "BOOL":
        return isinstance(value, bool)
    if datatype == "BYTES":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if datatype.startswith(("INT", "UINT")):
        return isinstance(value, int) and (value >= 0 or datatype.startswith("INT"))
    return not isinstance(value, float) or math.isfinite(value)


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _values(tensor: TensorInput, data: Any) -> list[Any]:
    """The tensor's values, flat, checked against its shape and datatype (400 naming it otherwise)."""
    where = f"inputs.{tensor.name}"
    if any(d < 0 for d in tensor.shape) or not tensor.shape:
        raise InvalidInputError(f"input {tensor.name!r}: shape {tensor.shape} must be whole sizes >= 0", where)
    flat = _flat(data)
    expected = math.prod(tensor.shape)
    if len(flat) != expected:
        raise InvalidInputError(
            f"input {tensor.name!r} has {len(flat)} values but shape {tensor.shape} needs {expected}", where
        )
    if _all_valid(flat, tensor.datatype):
        return flat
    for i, value in enumerate(flat):
        if not _valid(value, tensor.datatype):
            raise InvalidInputError(
                f"input {tensor.name!r}: value {i} ({json.dumps(value)[:40]}) is not {tensor.datatype}", where
            )
    return flat


def request_payload(request: InferRequest, signature: dict[str, Any] | None, binary: dict[str, list[Any]]) -> dict:
    """The MLflow payload (``{"inputs": …}``) an inference request stands for; raises InvalidInputError (400)."""
    if not request.inputs:
        raise InvalidInputError("the request has no inputs: send one tensor per input the model's metadata lists")
    names = [t.name for t in request.inputs]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"input names repeat: {names}", "inputs")
    values = {t.name: _values(t, binary.get(t.name, t.data)) for t in request.inputs}
    columns = [c["name"] for c in signature["columns"]] if signature and signature.get("type") == "dataframe" else []
    if columns and all(n in columns for n in names):
        out: dict[str, list[Any]] = {}
        for t in request.inputs:
            if len(t.shape) > 2 or (len(t.shape) == 2 and t.shape[1] != 1):
                raise InvalidInputError(f"column input {t.name!r} must have shape [n] or [n, 1], not {t.shape}", t.name)
            out[t.name] = values[t.name]
        return {"inputs": out}
    if len(request.inputs) != 1:
        unknown = [n for n in names if n not in columns]
        raise InvalidInputError(
            f"inputs {unknown} are not columns of this model ({', '.join(columns) or 'it takes one array'}): send "
            "one tensor per column, or one tensor holding the whole table",
            "inputs",
        )
    tensor = request.inputs[0]
    return {"inputs": _nest(values[tensor.name], tensor.shape)}


def decode_binary(request: InferRequest, blob: bytes) -> dict[str, list[Any]]:
    """The values of the inputs sent with the binary tensor data extension (``parameters.binary_data_size``),
    in request order from ``blob``; raises InvalidInputError when the sizes do not add up."""
    import numpy as np

    out: dict[str, list[Any]] = {}
    offset = 0
    for t in request.inputs:
        size = (t.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise InvalidInputError(f"input {t.name!r}: binary_data_size {size} is past the body's end", t.name)
        chunk = blob[offset : offset + size]
        offset += size
        if t.datatype == "BYTES":
            items, i = [], 0
            while i < len(chunk):
                if i + 4 > len(chunk):
                    raise InvalidInputError(f"input {t.name!r}: a BYTES element is cut short", t.name)
                (n,) = struct.unpack_from("<I", chunk, i)
                items.append(chunk[i + 4 : i + 4 + n].decode("utf-8", "replace"))
                i += 4 + n
            out[t.name] = items
        else:
            dtype = np.dtype(_NUMPY[t.datatype])
            if len(chunk) % dtype.itemsize:
                raise InvalidInputError(f"input {t.name!r}: {len(chunk)} bytes are not whole {t.datatype}s", t.name)
            out[t.name] = np.frombuffer(chunk, dtype=dtype).tolist()
    if offset != len(blob):
        raise InvalidInputError(f"{len(blob) - offset} bytes of binary data belong to no input", "inputs")
    return out


def _shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _datatype(flat: list[Any]) -> str:
    if all(isinstance(v, bool) for v in flat):
        return "BOOL" if flat else "FP64"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
        return "FP64"
    return "BYTES"


def _tensor(name: str, value: Any) -> Tensor:
    flat: list[Any] = []
    _flatten(value, flat)
    datatype = _datatype(flat)
    if datatype == "BYTES":
        flat = [v if isinstance(v, str) else json.dumps(v) for v in flat]
    shape = _shape(value)
    if math.prod(shape) != len(flat):  # ragged: one value per row, as JSON text
        flat, shape, datatype = [json.dumps(v) for v in value], [len(value)], "BYTES"
    return Tensor(name, datatype, shape, flat)  # type: ignore[arg-type]


def output_tensors(predictions: Any, wanted: list[str] | None) -> list[Tensor]:
    """The output tensors of a model's ``predictions`` (a list; of dicts for a table), those ``wanted`` only when
    given (400 for a name the model does not answer)."""
    if isinstance(predictions, list) and predictions and all(isinstance(p, dict) for p in predictions):
        keys = list(predictions[0])
        tensors = [_tensor(str(k), [p.get(k) for p in predictions]) for k in keys]
    elif isinstance(predictions, dict):
        tensors = [_tensor(str(k), v if isinstance(v, list) else [v]) for k, v in predictions.items()]
    else:
        tensors = [_tensor(OUTPUT, predictions if isinstance(predictions, list) else [predictions])]
    if wanted:
        have = {t.name: t for t in tensors}
        missing = [w for w in wanted if w not in have]
        if missing:
            raise InvalidInputError(
                f"outputs {missing} are not answered by this model: it gives {list(have)}", "outputs"
            )
        tensors = [have[w] for w in wanted]
    return tensors
