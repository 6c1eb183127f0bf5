"""Text from student code made safe to show: no terminal control sequences, no invisible reordering.

Exception messages and printed output come from the student's process. Before they reach
``results.json``, the gradebook or the instructor's terminal, every ANSI/OSC escape sequence,
every other control character (except newline and tab) and the Unicode bidirectional controls
("Trojan source" reordering) are removed; a removed run shows as ``�`` so nothing disappears silently.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"""
    \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?   # OSC ... BEL or ST (hyperlinks, window titles, clipboard)
    | \x1b[P^_X][^\x1b]*(?:\x1b\\)?       # DCS, PM, APC, SOS strings
    | \x1b\[[0-?]*[ -/]*[@-~]?            # CSI: colours, cursor moves, screen clears
    | \x1b[ -/]*[0-~]?                    # any other escape
    | \x9b[0-?]*[ -/]*[@-~]?              # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def clean(text: str) -> str:
    """``text`` without terminal escape sequences, control characters (but ``\\n``, ``\\t``) or bidi controls."""
    return _CONTROLS.sub("\ufffd", _ESCAPES.sub("\ufffd", text.replace("\r\n", "\n")))
