"""Files shipped with the package: the demo recording, the default model and its dummy."""

from __future__ import annotations

from pathlib import Path
from typing import Final

ASSETS: Final[Path] = Path(__file__).resolve().parent
#: A stand-in recording (our .npz format): one synthetic performer chaining
#: several actions, 30 fps. Regenerate with ``python -m tools.make_demo_clip``.
DEMO_CLIP: Final[Path] = ASSETS / "demo_clip.npz"
#: The default anonymizer: the PMR network with the "retarget" head and a privacy dial,
#: trained on the stand-in dataset for the default dummy (see MODEL_CARD.md).
DEFAULT_MODEL: Final[Path] = ASSETS / "pmr_default.pt"
#: The paper-faithful PMR (cross reconstruction D(E_M(x), E_P(dummy)), no dial), trained on the
#: stand-in with the paper's six sub-stages, shortened (MODEL_CARD.md, "Paper-faithful PMR").
PAPER_MODEL: Final[Path] = ASSETS / "pmr_paper.pt"
#: The default dummy: a stand-in performer's neutral clip whose body differs clearly from the average.
DEFAULT_DUMMY: Final[Path] = ASSETS / "dummy.npz"
MODEL_CARD: Final[Path] = ASSETS / "MODEL_CARD.md"
