"""The XY-Tokenizer network in PyTorch (`model` and its parts), and reading its checkpoints
(`checkpoint`: the original .ckpt; `hf`: Hugging Face-layout folders). Imported only by the
PyTorch backend and the exporter: every module here needs torch."""
