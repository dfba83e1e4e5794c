"""Serving an image model: a uint8 image in, arrays out.

Images arrive as ``numpy.ndarray`` (read-only, zero-copy over the received
bytes) and arrays go back as arrays, never as nested lists. The model is a
stand-in that needs no download: a fixed Sobel convolution for edges and a
tiny linear classifier whose weights ``setup()`` draws from a fixed seed, once
per worker, where a real adapter would load its weights from disk.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from snakepit_bridge import Adapter, ToolError, tool

SEED = 14
CLASSES = ("sky", "grass", "brick")
# Per-channel mean and spread of RGB values in [0, 1] (the usual ImageNet figures).
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Features: per-channel mean and std of the normalised image, and the mean edge strength.
FEATURES = 7


def _check_image(image: np.ndarray, batch: bool = False) -> None:
    want = "(N, H, W, 3)" if batch else "(H, W, 3)"
    ndim = 4 if batch else 3
    if image.ndim != ndim or image.shape[-1] != 3 or image.shape[-2] < 3 or image.shape[-3] < 3:
        raise ToolError(
            "INVALID_ARGUMENTS",
            f"image must be a uint8 array of shape {want} with H, W >= 3, got shape {list(image.shape)}",
            {"expected": want, "shape": list(image.shape)},
        )


def sobel_magnitude(image: np.ndarray) -> np.ndarray:
    """Edge strength of the gray image, float64, shape (..., H - 2, W - 2) (a 'valid' 3x3 convolution)."""
    pixels = image.astype(np.float64)
    # Written out term by term (not a matmul) so any other implementation can repeat it bit for bit.
    gray = 0.299 * pixels[..., 0] + 0.587 * pixels[..., 1] + 0.114 * pixels[..., 2]

    def at(dy: int, dx: int) -> np.ndarray:
        height, width = gray.shape[-2:]
        return gray[..., dy : height - 2 + dy, dx : width - 2 + dx]

    gx = (at(0, 2) - at(0, 0)) + 2 * (at(1, 2) - at(1, 0)) + (at(2, 2) - at(2, 0))
    gy = (at(2, 0) - at(0, 0)) + 2 * (at(2, 1) - at(0, 1)) + (at(2, 2) - at(0, 2))
    magnitude: np.ndarray = np.sqrt(gx * gx + gy * gy)
    return magnitude


class ImageAdapter(Adapter):
    """An edge filter and a linear classifier over RGB images."""

    thread_safe = True  # the weights are only read after setup(); numpy releases the GIL in its kernels

    def setup(self) -> None:
        rng = np.random.default_rng(SEED)
        self.weights = rng.normal(size=(len(CLASSES), FEATURES)).astype(np.float32)
        self.bias = (0.1 * rng.normal(size=len(CLASSES))).astype(np.float32)
        self.pid = os.getpid()

    def _features(self, images: np.ndarray) -> np.ndarray:
        """(..., H, W, 3) uint8 -> (..., FEATURES) float32."""
        normalised = (images.astype(np.float32) / 255 - MEAN) / STD
        axes = (-3, -2)
        edges = sobel_magnitude(images).mean(axis=(-2, -1)) / 255
        return np.concatenate(
            [normalised.mean(axis=axes), normalised.std(axis=axes), edges[..., None].astype(np.float32)], axis=-1
        )

    @tool(description="Logits, probabilities and label of one RGB image (H, W, 3)")
    def classify(self, image: npt.NDArray[np.uint8]) -> dict[str, Any]:
        _check_image(image)
        logits = self.weights @ self._features(image) + self.bias
        shifted = np.exp(logits - logits.max())
        return {
            "label": CLASSES[int(logits.argmax())],
            "logits": logits.astype(np.float32),
            "probabilities": (shifted / shifted.sum()).astype(np.float32),
        }

    @tool(description="Logits of a batch of RGB images (N, H, W, 3): a float32 (N, classes) array")
    def classify_batch(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        _check_image(images, batch=True)
        return (self._features(images) @ self.weights.T + self.bias).astype(np.float32)

    @tool(description="The edge map of an RGB image: a uint8 (H - 2, W - 2) image")
    def edges(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        _check_image(image)
        edges: npt.NDArray[np.uint8] = np.clip(np.rint(sobel_magnitude(image)), 0, 255).astype(np.uint8)
        return edges

    @tool(description="The classes, the seed and the weights the worker drew at setup")
    def model_info(self) -> dict[str, Any]:
        return {"classes": list(CLASSES), "seed": SEED, "weights": self.weights, "bias": self.bias, "pid": self.pid}
