"""top_p_filter drops every token whose preceding mass is >= p but forgets to always keep the likeliest one:
p = 0 removes every token."""

REPLACE = [("    drop_sorted[..., 0] = False  # the likeliest token always stays\n", "")]
