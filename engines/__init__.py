"""Engine artifacts of the streaming graph: ONNX export (:mod:`engines.export`), TensorRT builds
(:mod:`engines.tensorrt_build`) and the metadata that decides when an engine is rebuilt
(:mod:`engines.metadata`).

Artifacts are named by what they depend on and live in the artifact cache
(``~/.cache/pmr-stream``, ``$PMR_STREAM_CACHE``) or where ``pmr export --output``
puts them; they are never committed. Nothing here imports TensorRT at import time.
"""
