"""xyrt bench: latency profiling per backend and per stage, against a baseline in the same run."""
