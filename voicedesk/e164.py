"""E.164, the one phone-number form voicedesk stores and dials (``calls``/``profiles`` check it too)."""

PATTERN = r"^\+[1-9][0-9]{6,14}$"
