"""Model flavors: how each kind of model is serialised, loaded and asked for predictions.

Flavors are registered lazily as ``"module:Class"`` strings (like fsspec's ``registry.py``), each naming the
library it needs and the package that installs it, so nothing heavy is imported until a model of that flavor
is stored or loaded, and a missing library fails with a pip hint. :func:`flavor_for` picks the first
registered flavor whose library a model's class comes from (``xgboost``, ``lightgbm``, ``torch``, then
``sklearn``), falling back to ``generic`` (cloudpickle).

A stored model is one self-describing blob: ``MAGIC``, a 4-byte header length, a JSON header (flavor,
format, class, the signature and predict method) and the flavor's payload. :func:`loads_model` — the loader
workers pass to the artifact cache — reads the header, so a worker needs no catalog access to load a model.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import InvalidInputError, MissingDependencyError
from .skops_import import skops_io

__all__ = [
    "FLAVORS",
    "Flavor",
    "LoadedModel",
    "available_flavors",
    "dumps_model",
    "flavor_for",
    "get_flavor",
    "loads_model",
    "register_flavor",
    "skops_io",
]

MAGIC = b"NBDMODEL\x01"

# name -> "module:Class"; the order is the order in which flavor_for tries them ("generic" always last)
FLAVORS: dict[str, str | type[Flavor]] = {
    "xgboost": "nbdeploy.models.flavors:XGBoostFlavor",
    "lightgbm": "nbdeploy.models.flavors:LightGBMFlavor",
    "torch": "nbdeploy.models.flavors:TorchFlavor",
    "sklearn": "nbdeploy.models.flavors:SklearnFlavor",
    "generic": "nbdeploy.models.flavors:GenericFlavor",
}
_instances: dict[str, Flavor] = {}


def _version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class Flavor:
    """One way of storing models. Subclasses set the class attributes and implement ``dump``/``load``."""

    name: str = ""
    #: top-level modules a model's classes come from for this flavor to claim it (empty: claims anything)
    roots: tuple[str, ...] = ()
    #: module that must be importable to use the flavor, and the pip package that provides it
    module: str | None = None
    package: str | None = None
    #: distributions whose versions are recorded with each version
    distributions: tuple[str, ...] = ("numpy", "pandas", "cloudpickle")

    def matches(self, model: Any) -> bool:
        """Whether ``model`` is this flavor's (decided from its classes' modules, importing nothing)."""
        if not self.roots:
            return True
        return any(k.__module__.split(".")[0] in self.roots for k in type(model).__mro__)

    def require(self) -> None:
        """Raise :class:`MissingDependencyError` (with the pip hint) if the flavor's library is missing."""
        if self.module and importlib.util.find_spec(self.module) is None:
            raise MissingDependencyError(f"the {self.name} model flavor", self.package or self.module)

    def libraries(self) -> dict[str, str]:
        """Versions of Python and the libraries that matter to this flavor (those installed)."""
        found = {"python": platform.python_version()}
        for dist in self.distributions:
            v = _version_of(dist)
            if v:
                found[dist] = v
        return found

    def dump(self, model: Any) -> tuple[dict[str, Any], bytes]:
        """Return ``(header fields, payload bytes)`` for ``model``; the header must name the ``format``."""
        raise NotImplementedError

    def load(self, header: dict[str, Any], payload: bytes) -> Any:
        """Rebuild the model from what :meth:`dump` returned."""
        raise NotImplementedError

    def predict(self, model: Any, data: Any, method: str = "predict") -> Any:
        """Return ``model``'s predictions for ``data`` (a DataFrame or an ndarray)."""
        fn = getattr(model, method, None)
        if fn is None:
            if method == "predict" and callable(model):
                return model(data)
            raise InvalidInputError(f"a {type(model).__name__} has no method {method!r}", "method")
        return fn(data)


class SklearnFlavor(Flavor):
    """scikit-learn estimators and pipelines: skops when installed and it round-trips, else joblib."""

    name = "sklearn"
    roots = ("sklearn",)
    module = "sklearn"
    package = "scikit-learn"
    distributions = ("scikit-learn", "skops", "joblib", "numpy", "pandas", "scipy")

    def dump(self, model: Any) -> tuple[dict[str, Any], bytes]:
        if importlib.util.find_spec("skops") is not None:
            try:
                sio = skops_io()
                payload = sio.dumps(model)
                trusted = sio.get_untrusted_types(data=payload)
                sio.loads(payload, trusted=trusted)  # only keep skops when it reads back what it wrote
                return {"format": "skops", "trusted": trusted}, payload
            except Exception as exc:  # e.g. a FunctionTransformer over a notebook's function
                reason = f"skops could not store it ({type(exc).__name__}: {exc})"
        else:
            reason = "skops is not installed"
        try:
            payload = _joblib_dumps(model)
        except Exception:  # e.g. a function only the notebook's namespace holds
            payload = b"__main__"
        if b"__main__" not in payload:
            return {"format": "joblib", "note": f"{reason}; stored with joblib"}, payload
        # joblib pickles a notebook's own functions and classes by reference, which workers cannot resolve
        import cloudpickle

        note = f"{reason}; stored with cloudpickle, which keeps the notebook's own code by value"
        return {"format": "cloudpickle", "note": note}, cloudpickle.dumps(model)

    def predict(self, model: Any, data: Any, method: str = "predict") -> Any:
        """As :meth:`Flavor.predict`; when every value is a finite number, scikit-learn is told so
        (``assume_finite``) instead of checking again in each step of a pipeline — the same answer for less time.
        Input with NaN or infinity goes through scikit-learn's own checks and messages."""
        if _all_finite(data):
            import sklearn

            with sklearn.config_context(assume_finite=True):
                return super().predict(model, data, method)
        return super().predict(model, data, method)

    def load(self, header: dict[str, Any], payload: bytes) -> Any:
        if header.get("format") == "cloudpickle":
            import cloudpickle

            return cloudpickle.loads(payload)
        if header.get("format") == "skops":
            try:
                sio = skops_io()
            except ImportError as exc:
                raise MissingDependencyError("loading a model stored with skops", "skops") from exc
            # trust exactly the types recorded when it was stored: skops refuses any other
            return sio.loads(payload, trusted=list(header.get("trusted", [])))
        return _joblib_loads(payload)


def _all_finite(data: Any) -> bool:
    """Whether ``data`` (a DataFrame or ndarray) holds only finite floating-point or integer numbers."""
    import numpy as np

    if hasattr(data, "dtypes"):  # a DataFrame: numeric columns only (a string or object column: let sklearn check)
        if not all(getattr(d, "kind", "O") in "fiu" and isinstance(d, np.dtype) for d in data.dtypes):
            return False
        values = data.to_numpy()
    elif isinstance(data, np.ndarray):
        values = data
    else:
        return False
    if values.dtype.kind in "iu":
        return True
    return values.dtype.kind == "f" and bool(np.isfinite(values).all())


def _joblib_dumps(model: Any) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


def _joblib_loads(payload: bytes) -> Any:
    import joblib

    return joblib.load(io.BytesIO(payload))


class XGBoostFlavor(Flavor):
    """XGBoost ``Booster`` and scikit-learn wrappers, in XGBoost's own UBJSON model format."""

    name = "xgboost"
    roots = ("xgboost",)
    module = "xgboost"
    package = "xgboost"
    distributions = ("xgboost", "xgboost-cpu", "scikit-learn", "numpy", "pandas")

    def dump(self, model: Any) -> tuple[dict[str, Any], bytes]:
        import xgboost as xgb

        if isinstance(model, xgb.Booster):
            return {"format": "ubj", "wrapper": None}, bytes(model.save_raw("ubj"))
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.ubj")
            model.save_model(path)
            with open(path, "rb") as fh:
                payload = fh.read()
        cls = type(model)
        return {"format": "ubj", "wrapper": f"{cls.__module__}:{cls.__qualname__}"}, payload

    def load(self, header: dict[str, Any], payload: bytes) -> Any:
        import xgboost as xgb

        wrapper = header.get("wrapper")
        if not wrapper:
            booster = xgb.Booster()
            booster.load_model(bytearray(payload))
            return booster
        module, _, qualname = wrapper.partition(":")
        model = getattr(importlib.import_module(module), qualname)()
        model.load_model(bytearray(payload))
        return model

    def predict(self, model: Any, data: Any, method: str = "predict") -> Any:
        import xgboost as xgb

        if isinstance(model, xgb.Booster):
            return model.predict(xgb.DMatrix(data))
        return super().predict(model, data, method)


class LightGBMFlavor(Flavor):
    """LightGBM: a ``Booster`` in LightGBM's text model format; scikit-learn wrappers with joblib (whose
    pickle holds the booster in that same text format)."""

    name = "lightgbm"
    roots = ("lightgbm",)
    module = "lightgbm"
    package = "lightgbm"
    distributions = ("lightgbm", "scikit-learn", "joblib", "numpy", "pandas")

    def dump(self, model: Any) -> tuple[dict[str, Any], bytes]:
        import lightgbm as lgb

        if isinstance(model, lgb.Booster):
            return {"format": "lightgbm-text"}, model.model_to_string().encode()
        return {"format": "joblib"}, _joblib_dumps(model)

    def load(self, header: dict[str, Any], payload: bytes) -> Any:
        if header.get("format") == "lightgbm-text":
            import lightgbm as lgb

            return lgb.Booster(model_str=payload.decode())
        return _joblib_loads(payload)


class TorchFlavor(Flavor):
    """PyTorch ``nn.Module``: ``torch.save`` of the whole module, classes defined in a notebook pickled by
    value (cloudpickle); predictions run in eval mode without gradients on float32 tensors."""

    name = "torch"
    roots = ("torch",)
    module = "torch"
    package = "torch"
    distributions = ("torch", "numpy", "cloudpickle")

    def dump(self, model: Any) -> tuple[dict[str, Any], bytes]:
        import cloudpickle
        import torch

        buf = io.BytesIO()
        torch.save(model, buf, pickle_module=cloudpickle)
        return {"format": "torch.save"}, buf.getvalue()

    def load(self, header: dict[str, Any], payload: bytes) -> Any:
        import torch

        model = torch.load(io.BytesIO(payload), weights_only=False, map_location="cpu")
        model.eval()
        return model

    def predict(self, model: Any, data: Any, method: str = "predict") -> Any:
        import numpy as np
        import torch

        if method != "predict":
            return super().predict(model, data, method)
        values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        with torch.no_grad():
            out = model(torch.as_tensor(np.asarray(values, dtype=np.float32)))
        return out.detach().cpu().numpy()


class GenericFlavor(Flavor):
    """Anything cloudpickle can store that has ``predict`` (or is callable)."""

    name = "generic"

    def dump(self, model: Any) -> tuple[dict[str, Any], bytes]:
        import cloudpickle

        return {"format": "cloudpickle"}, cloudpickle.dumps(model)

    def load(self, header: dict[str, Any], payload: bytes) -> Any:
        import cloudpickle

        return cloudpickle.loads(payload)


def register_flavor(name: str, target: str | type[Flavor], *, first: bool = True) -> None:
    """Register a flavor class (or ``"module:Class"``) under ``name``; ``first`` tries it before the others."""
    _instances.pop(name, None)
    entries = {k: v for k, v in FLAVORS.items() if k != name}
    if first:
        ordered = {name: target, **entries}
    else:
        generic = entries.pop("generic", None)
        ordered = {**entries, name: target, **({"generic": generic} if generic else {})}
    FLAVORS.clear()
    FLAVORS.update(ordered)  # type: ignore[arg-type]


def get_flavor(name: str) -> Flavor:
    """Return the flavor registered as ``name``; raise :class:`InvalidInputError` if there is none."""
    flavor = _instances.get(name)
    if flavor is not None:
        return flavor
    target = FLAVORS.get(name)
    if target is None:
        raise InvalidInputError(f"unknown model flavor {name!r}: use one of {', '.join(FLAVORS)}", "flavor")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    flavor = _instances[name] = target()  # type: ignore[operator]
    return flavor


def available_flavors() -> dict[str, bool]:
    """Every registered flavor and whether its library is installed here."""
    out = {}
    for name in FLAVORS:
        flavor = get_flavor(name)
        out[name] = not flavor.module or importlib.util.find_spec(flavor.module) is not None
    return out


def flavor_for(model: Any) -> Flavor:
    """Return the first registered flavor that claims ``model`` (``generic`` claims anything)."""
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.roots and flavor.matches(model):
            return flavor
    return get_flavor("generic")


@dataclass
class LoadedModel:
    """A model loaded from its blob, with the header that says how to feed it."""

    model: Any
    flavor: Flavor
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.header.get("signature")

    def predict(self, data: Any) -> Any:
        return self.flavor.predict(self.model, data, self.header.get("method") or "predict")


def dumps_model(
    model: Any, flavor: str | None = None, extra: dict[str, Any] | None = None
) -> tuple[bytes, dict[str, Any]]:
    """Serialise ``model`` as one blob; return ``(blob, header)``.

    ``flavor`` forces a flavor (default: :func:`flavor_for`); ``extra`` goes into the header (signature,
    method). Raises :class:`MissingDependencyError` when the flavor's library is missing and
    :class:`InvalidInputError` when the model cannot be serialised.
    """
    chosen = get_flavor(flavor) if flavor else flavor_for(model)
    chosen.require()
    try:
        fields, payload = chosen.dump(model)
    except (MissingDependencyError, InvalidInputError):
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"the {type(model).__name__} cannot be stored with the {chosen.name} flavor ({type(exc).__name__}: "
            f"{exc}); pass flavor='generic' to try cloudpickle",
            "model",
        ) from exc
    cls = type(model)
    header = {
        "flavor": chosen.name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "libraries": chosen.libraries(),
        **fields,
        **(extra or {}),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    return MAGIC + struct.pack(">I", len(head)) + head + payload, header


def read_header(blob: bytes) -> tuple[dict[str, Any], int]:
    """Return ``(header, payload offset)`` of a model blob; raise :class:`InvalidInputError` if it is not one."""
    if not blob.startswith(MAGIC):
        raise InvalidInputError("this blob is not a stored nbdeploy model", "model")
    start = len(MAGIC) + 4
    (length,) = struct.unpack(">I", blob[len(MAGIC) : start])
    return json.loads(blob[start : start + length]), start + length


def loads_model(blob: bytes) -> LoadedModel:
    """The artifact-cache loader of models: rebuild a :class:`LoadedModel` from its blob.

    Raises :class:`MissingDependencyError` (with the pip hint) when this process lacks the flavor's library.
    """
    header, offset = read_header(blob)
    flavor = get_flavor(header["flavor"])
    flavor.require()
    return LoadedModel(flavor.load(header, bytes(memoryview(blob)[offset:])), flavor, header)
