"""The container runtime: namespaces, the init sequence, capabilities, seccomp."""
