"""Tables and figures of runs, comparisons and the review."""
