"""The fixed form of a job and its result: what the runtime checks and the inference package produces.

Hand-written, like proto/digest.py: the runtime refuses a PostJob or RevealResult outside
these values and the inference package refuses a job or result outside them, and neither
may import the other (DESIGN.md section 2), so the one copy lives in this leaf.
"""

from __future__ import annotations

# How the prompt reaches the model: wrapped in the model's chat template, or as given.
PROMPT_FORMATS = ("chat", "raw")
# Why generation stopped: an end-of-generation token, or max_tokens reached.
STOP_REASONS = ("eos", "length")
# The largest sampling temperature, in thousandths (100.0).
MAX_TEMPERATURE_MILLI = 100_000
