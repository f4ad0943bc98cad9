"""The OpenVINO backend (CPU: fp32, bf16, int8) and its per-stage counters."""
