"""Engine API handlers, one module per Docker API resource."""
