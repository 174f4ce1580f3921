"""ember's ops, one family per module; each op is a Function with forward and backward side by side."""
