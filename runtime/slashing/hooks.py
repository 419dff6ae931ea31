"""slashing hooks: at the start of each block the brake is decided against the current set, then the double-signs
the block carries are punished (a double-sign is never braked)."""

from __future__ import annotations

from runtime.primitives import BlockContext
from runtime.slashing import brake, double_sign
from runtime.state import Overlay


def on_initialize(state: Overlay, block: BlockContext) -> None:
    """The brake decided, then the block's evidence punished."""
    brake.on_initialize(state, block)
    double_sign.on_initialize(state, block)
