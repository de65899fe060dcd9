"""Slow, readable references written from the firmware sources (Python ints, explicit C semantics)."""
