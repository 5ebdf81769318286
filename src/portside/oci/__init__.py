"""Pure data of the OCI image spec: digests, descriptors, references, manifests, configs."""
