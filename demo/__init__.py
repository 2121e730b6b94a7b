"""`make demo`: the whole RLHF loop on the embedded default, from criteria to a verified handoff package."""
