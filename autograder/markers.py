"""The solution markers: ``# BEGIN SOLUTION[: TODO text]`` ... ``# END SOLUTION`` in reference files."""

from __future__ import annotations

import re

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<todo>.*?))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
