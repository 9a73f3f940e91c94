"""The streaming anonymizer: ``raw/`` in, ``anon/`` out.

:mod:`.options` (:class:`~pmr_stream.anonymizer.options.ServiceOptions` and its flags),
:mod:`.window` (a 75-frame ring buffer per person and the window policies), :mod:`.service`
(windows batched across streams through one backend, published through the allow-list of
:mod:`pmr_stream.wire.privacy`), :mod:`.arrivals` (the frame rate that decides whether a batch
waits) and :mod:`.http` (``/metrics`` and ``/stats.json``). Whole recordings go through
:mod:`pmr_stream.offline` instead, with the same backends.
"""
