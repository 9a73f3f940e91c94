"""Files the backends build from a model: ONNX graphs (:mod:`.onnx_export`), TensorRT engines
(:mod:`.tensorrt_build`) and the metadata that decides when an engine is rebuilt
(:mod:`.metadata`).

The runtime builds them on first use, so they live in the library; ``pmr export`` (the plugin in
the repository's ``engines/`` folder) writes them where a deployment wants them. Artifacts are
named by what they depend on and live in the artifact cache (``~/.cache/pmr-stream``,
``$PMR_STREAM_CACHE``) or where ``pmr export --output`` puts them; they are never committed.
Nothing here imports TensorRT at import time.
"""
