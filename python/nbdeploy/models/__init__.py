"""Models: a registry of versioned models, served over REST with micro-batching, and batch prediction on Dask.

``nbd.models.put(model, "churn", sample_input=X[:100], alias="production")`` stores a version (serialised by
its flavor: scikit-learn, XGBoost, LightGBM, PyTorch or cloudpickle); it is served at once at
``POST /nbdeploy/api/models/churn/predict`` (MLflow's scoring formats) and by ``nbd.models.predict``;
``nbd.models.predict_batch`` predicts data larger than memory on the cluster; ``drift`` and ``plot`` compare
served inputs with the training sample. ``nbd.models.<method>`` is the method of the default app's
:class:`ModelManager` (``app.models``).
"""

from __future__ import annotations

from ..app import delegate
from .flavors import Flavor, available_flavors, register_flavor
from .manager import ModelManager
from .psi import DriftReport
from .records import ModelInfo, ModelList, ModelVersion, Prediction

__all__ = [
    "DriftReport",
    "Flavor",
    "ModelInfo",
    "ModelList",
    "ModelManager",
    "ModelVersion",
    "Prediction",
    "available_flavors",
    "register_flavor",
]

__getattr__, __dir__ = delegate(__name__, "models")
