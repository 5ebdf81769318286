"""The docker-compatible command line: a thin HTTP client of the daemon."""
