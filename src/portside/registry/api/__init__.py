"""The registry's endpoints, one module per resource (blobs, uploads, manifests, discovery).

Each ``handle`` takes the Context, the Request and the parts of the path the
router matched; names are already validated and the caller authorized.
"""
