"""xyrt.export: the export-friendly PyTorch implementation of XY-Tokenizer (needs torch)."""
