"""Containers: the create request and the OCI spec built from it (``spec``, ``user``), records, the service."""
