"""Backends: the interface (`base`), the registry that picks one for a model source
(`registry`), and one module per runtime (ONNX Runtime, OpenVINO, TensorRT, PyTorch)."""
