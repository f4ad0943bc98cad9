"""I/O: audio files and conversion (`audio`), code files (`codes`), streaming sources and sinks
(`stream_io`, `decode_io`)."""
