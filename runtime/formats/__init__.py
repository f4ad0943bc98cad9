"""File and wire formats below the codec: audio files, code files, code frames (JSON)."""
