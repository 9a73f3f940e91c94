"""pmr-stream: real-time anonymization of skeleton motion with the PMR network.

The path of a frame: ``capture`` (producers) -> ``wire`` (schema, sockets) ->
window -> backend -> ``wire`` -> ``sinks`` (viewer, writer, recorder).
``skeleton`` holds the layouts and constants every stage shares.
"""

__version__ = "0.1.0"
