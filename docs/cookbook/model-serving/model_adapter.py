"""Serving a model loaded once per worker, on the thread profile.

``setup()`` runs once per worker process, before it reports ready: load (here:
fit) the model there, never per call. numpy releases the GIL in its kernels, so
one process can serve several predictions at once on threads; the adapter says
so with ``thread_safe = True`` because the fitted model is only read after setup.
"""

from __future__ import annotations

import os
import time

import numpy as np

from snakepit_bridge import Adapter, tool


class LinearModel:
    """A scikit-learn-style estimator: ``fit`` once, ``predict`` many times."""

    def __init__(self) -> None:
        self.coef_: np.ndarray | None = None

    def fit(self, features: np.ndarray, target: np.ndarray) -> LinearModel:
        design = np.hstack([features, np.ones((features.shape[0], 1))])
        self.coef_, *_ = np.linalg.lstsq(design, target, rcond=None)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        assert self.coef_ is not None, "fit first"
        return features @ self.coef_[:-1] + self.coef_[-1]


class ModelAdapter(Adapter):
    """Predictions from one model instance shared by the worker's threads."""

    thread_safe = True  # the model is read-only after setup()

    def setup(self) -> None:
        # Stand-in for loading weights from disk: fit y = 3*x0 - 2*x1 + 1 on fixed data.
        rng = np.random.default_rng(7)
        features = rng.normal(size=(500, 2))
        target = features @ np.array([3.0, -2.0]) + 1.0
        self.model = LinearModel().fit(features, target)
        self.loaded = {"pid": os.getpid(), "loaded_at": time.time()}

    @tool(description="Predict one value per row of two features")
    def predict(self, rows: list[list[float]]) -> list[float]:
        return self.model.predict(np.asarray(rows, dtype=float)).round(6).tolist()

    @tool(description="Which process loaded the model, and when")
    def model_info(self) -> dict[str, float]:
        coef = self.model.coef_
        assert coef is not None
        return {**self.loaded, "coef": coef.round(6).tolist()}
