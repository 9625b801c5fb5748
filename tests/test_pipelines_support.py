"""Helpers of the pipeline tests (no tests here): small notebooks written into a test's folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["notebook", "write_pipeline"]


def notebook(path: Path, parameters: str, *cells: str) -> Path:
    """Write a Python notebook at ``path``: a cell tagged ``parameters`` holding ``parameters``, then ``cells``."""

    def cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "execution_count": None,
            "id": f"c{abs(hash((source, str(tags)))) % 10**8}",
            "metadata": {"tags": tags or []},
            "outputs": [],
            "source": source,
        }

    nb = {
        "cells": [cell(parameters, ["parameters"]), *(cell(c) for c in cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def write_pipeline(folder: Path, text: str, name: str = "daily") -> Path:
    """Write ``NAME.pipeline.yaml`` holding ``text`` into ``folder``."""
    path = folder / f"{name}.pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path
