"""Whole datasets at once: ``pmr anonymize`` over folders and globs (inputs.py: which files;
names.py: what their outputs are called; run.py: windows batched across files onto one engine,
workers, skip and resume; manifest.py: what was done)."""
