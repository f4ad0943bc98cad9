"""The ONNX Runtime backend and its optimised-graph cache."""
