"""Builds: the Dockerfile front end (parser, word expansion, .dockerignore) and the executor."""
