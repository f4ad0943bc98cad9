"""Real-time loops above the codec: capture to codes (encode_loop), codes to playback or a
WAV file (decode_loop)."""
