"""The PyTorch backend (CPU or CUDA): backend, device rules, CUDA graphs, staging, stages."""
