"""`ult demo`: the whole pipeline on one machine, in the sandbox."""
