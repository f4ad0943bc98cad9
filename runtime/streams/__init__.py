"""Streams: `encode_stream` (audio in, code frames out) and `decode_stream` (codes in, audio
out), stepped by a codec over any backend."""
