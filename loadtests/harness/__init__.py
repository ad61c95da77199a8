"""The parts of `loadtests/run_taps.py`: services, the server, seeding, tap bodies, wrk, Locust,
profiling and the report section, each usable alone."""
