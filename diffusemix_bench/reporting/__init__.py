"""Reports: finished runs read back and printed beside the paper's numbers (markdown, LaTeX, CSV,
plots), from the ``paper:`` block of an experiment file."""
