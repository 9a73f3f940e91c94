"""The PMR network (one definition for training, export and runtime), its heads and checkpoints.

The network's names are re-exported lazily: ``pmr_stream.model.privacy_dial`` and the other
torch-free modules import without torch (``pmr --help`` builds every parser in well under a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pmr_stream.model.pmr import DMR_CHANNELS, PMR_CHANNELS, AnonymizerGraph, PMRModel, count_parameters

__all__ = ["PMRModel", "AnonymizerGraph", "PMR_CHANNELS", "DMR_CHANNELS", "count_parameters"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pmr_stream.model import pmr

        return getattr(pmr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
