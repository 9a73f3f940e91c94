"""Sinks of skeleton streams: the recorder (:mod:`~pmr_stream.sinks.recorder`, its 1 s
segments in :mod:`~pmr_stream.sinks.segments`), the live viewer and video writer
(:mod:`~pmr_stream.sinks.viewer`) and the probe (:mod:`~pmr_stream.sinks.probe`).

Drawing skeletons and writing videos is :mod:`pmr_stream.render`.
"""
