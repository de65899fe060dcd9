"""Audio sources and sinks."""
