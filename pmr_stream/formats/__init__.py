"""Skeleton file formats: NTU ``.skeleton``, pmr-stream recordings, SGN and ST-GCN arrays, BVH (written).

Use :func:`load_recording`, :func:`save_recording` and :func:`convert` for any format;
the modules :mod:`.ntu`, :mod:`.recording`, :mod:`.arrays` and :mod:`.bvh` hold the details.
"""

from __future__ import annotations

from pmr_stream.formats.arrays import (
    load_array_file,
    recording_to_sgn,
    recording_to_stgcn,
    save_array_file,
    sgn_to_recording,
    stgcn_to_recording,
)
from pmr_stream.formats.bvh import BvhOptions, write_bvh_files
from pmr_stream.formats.io import (
    FORMATS,
    OUTPUT_FORMATS,
    Written,
    convert,
    guess_format,
    load_recording,
    save_recording,
)
from pmr_stream.formats.ntu import (
    NtuBody,
    NtuFrame,
    NtuSkeleton,
    SkeletonFormatError,
    format_skeleton,
    parse_skeleton,
    read_skeleton,
    write_skeleton,
)
from pmr_stream.formats.ntu_dataset import NtuName, parse_ntu_name
from pmr_stream.formats.recording import FORMAT_VERSION, Recording

__all__ = [
    "SkeletonFormatError", "NtuBody", "NtuFrame", "NtuSkeleton", "NtuName",
    "read_skeleton", "parse_skeleton", "write_skeleton", "format_skeleton", "parse_ntu_name",
    "Recording", "FORMAT_VERSION",
    "recording_to_sgn", "sgn_to_recording", "recording_to_stgcn", "stgcn_to_recording",
    "load_array_file", "save_array_file",
    "FORMATS", "OUTPUT_FORMATS", "Written", "BvhOptions", "write_bvh_files", "guess_format", "load_recording", "save_recording", "convert",
]  # fmt: skip
