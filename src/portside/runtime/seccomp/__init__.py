"""Seccomp for containers without libseccomp: Docker's profiles, compiled to classic BPF in Python."""
