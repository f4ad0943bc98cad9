"""Shared test data that is not a fixture: device facts of real GPUs for TensorRT cache keys."""

from __future__ import annotations

from xyrt.runtime.trt_profiles import DeviceFacts

ORIN = DeviceFacts("Orin", "8.7", "10.3.0")
H100 = DeviceFacts("NVIDIA H100 80GB HBM3", "9.0", "11.0.0")
