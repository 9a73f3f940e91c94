"""The PMR network (one definition for training, export and runtime), its heads and checkpoints."""

from pmr_stream.model.pmr import DMR_CHANNELS, PMR_CHANNELS, AnonymizerGraph, PMRModel, count_parameters

__all__ = ["PMRModel", "AnonymizerGraph", "PMR_CHANNELS", "DMR_CHANNELS", "count_parameters"]
