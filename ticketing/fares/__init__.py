"""Fares: a GTFS-Fares v2 feed with our pass and cap extension, and a pure engine pricing journeys.

Standard library only: the engine reads no clock and does no I/O; the loader reads CSV text.
"""
