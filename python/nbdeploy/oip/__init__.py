"""The Open Inference Protocol (KServe V2) REST API for every stored model.

Health (``/v2/health/live``, ``/v2/health/ready``), server and model metadata (``/v2``,
``/v2/models/{name}[/versions/{v}]``), model readiness (``…/ready``) and inference
(``POST /v2/models/{name}[/versions/{v}]/infer``) with typed tensors, JSON or with the binary tensor data
extension (what ``tritonclient[http]`` sends by default). Inference goes through the same serving pools as
``/models/{name}/predict``: tensors become an MLflow payload checked against the version's signature
(:mod:`.tensors`), predictions become output tensors. ``nbdeploy serve`` answers at the root, where OIP
clients look, and under ``/nbdeploy/api/v2/…``; the Jupyter extension under ``/nbdeploy/api/v2/…``. Errors use
nbdeploy's error body (``{"error": {"type", "message"}}``), whose ``error`` an OIP client shows.
"""
