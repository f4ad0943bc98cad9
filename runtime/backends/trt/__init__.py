"""The TensorRT backend: engines and their optimisation profiles."""
