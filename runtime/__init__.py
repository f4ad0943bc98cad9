"""xyrt.runtime: torch-free inference pieces (front end, audio I/O, code formats, chunking)."""
