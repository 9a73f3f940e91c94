"""`pmr export`: the command that writes ONNX graphs and TensorRT engines (installed as
``pmr_engines``; the building itself lives in :mod:`pmr_stream.backends.artifacts`)."""
