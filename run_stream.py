#!/usr/bin/env python3
"""pmr-stream's one-command demo: the streaming anonymizer, end to end, on loopback.

    python run_stream.py                          # replay the built-in recording
    python run_stream.py --source webcam:0        # live (Ctrl-C stops)
    python run_stream.py --source video:FILE --backend onnxruntime --device cpu

Runs a producer, the anonymizer service and a recorder as separate processes,
writes an original | anonymized side-by-side video (default out/stream_demo.mp4),
says where it is and prints the added latency. Same as ``pmr stream``.
"""

from __future__ import annotations

import sys

from pmr_stream.cli import main as pmr_main

if __name__ == "__main__":
    sys.exit(pmr_main(["stream", *sys.argv[1:]]))
