"""Takes the distance with abs_() on the caller's tensor (bidirectional), changing it in place."""

REPLACE = [("distance = relative_position.abs()", "distance = relative_position.abs_()")]
