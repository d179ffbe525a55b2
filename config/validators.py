"""Validators every app's tenant-set text shares: one rule, one message, not a copy per app."""

import unicodedata

from django.core.exceptions import ValidationError

# Joiners are part of how Persian, Indic scripts and emoji sequences are written: they stay.
_JOINERS = {"\u200c", "\u200d"}
# Control (BEL, ESC, NUL...), format (bidi overrides such as U+202E, which shows "evil" as "live";
# zero-width spaces), surrogates, private use, unassigned, and line or paragraph separators.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES and char not in _JOINERS


def _refuse(char: str):
    name = unicodedata.name(char, "").title() or "a control character"
    raise ValidationError(
        "Invisible or control characters are not allowed here (found U+%(code)04X, %(name)s).",
        code="hidden_character",
        params={"code": ord(char), "name": name},
    )


def validate_plain_text(value):
    """One line of text a person reads (a name, a destination, a reason): no control characters
    (line breaks, tabs, BEL, ESC) and no invisible formatting that makes it read otherwise."""
    for char in str(value):
        if _hidden(char):
            _refuse(char)


def validate_plain_lines(value):
    """As validate_plain_text, line breaks allowed (a list of one item a line)."""
    for char in str(value):
        if char not in "\r\n" and _hidden(char):
            _refuse(char)


MAX_WAV_BYTES = 5 * 1024 * 1024  # a minute of 8 kHz 16-bit WAV is under 1 MB


def validate_wav_upload(upload):
    """An uploaded prompt Asterisk will play: a RIFF/WAVE file of at most MAX_WAV_BYTES (the header
    is read, not the name trusted)."""
    if upload.size > MAX_WAV_BYTES:
        raise ValidationError(f"At most {MAX_WAV_BYTES // (1024 * 1024)} MB.")
    header = upload.read(12)
    upload.seek(0)
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise ValidationError("A WAV audio file (Asterisk plays 8 kHz mono best).")
