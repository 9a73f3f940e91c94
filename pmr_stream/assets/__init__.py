"""Files shipped with the package: the built-in demo recording (later: default weights and dummy)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

ASSETS: Final[Path] = Path(__file__).resolve().parent
#: A stand-in recording (our .npz format): one synthetic performer chaining
#: several actions, 30 fps. Regenerate with ``python -m tools.make_demo_clip``.
DEMO_CLIP: Final[Path] = ASSETS / "demo_clip.npz"
