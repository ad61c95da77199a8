"""The parking context's use cases (sessions, quotes, reservations, enforcement)."""
