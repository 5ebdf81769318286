"""Seccomp for containers without libseccomp: Docker's profiles, compiled to classic BPF in Python.

``profile`` parses a profile and resolves it for a container's capabilities,
``bpf`` compiles the rules, ``load`` installs the program in the calling
process. docs/seccomp.md tells the whole story.
"""

from portside.runtime.seccomp.bpf import Insn, Program, compile_profile, compile_rules, encode, flag_bits
from portside.runtime.seccomp.default import DEFAULT_CAPABILITIES, default_profile
from portside.runtime.seccomp.load import UNCONFINED, install
from portside.runtime.seccomp.oci import to_oci
from portside.runtime.seccomp.profile import (
    Action, Arg, Condition, Op, Profile, Rule, Syscall, filter_arches, parse_profile, resolve,
)

__all__ = [
    "DEFAULT_CAPABILITIES", "Action", "Arg", "Condition", "Insn", "Op", "Profile", "Program", "Rule", "Syscall",
    "compile_profile", "compile_rules", "default_profile", "encode", "filter_arches", "flag_bits", "install",
    "parse_profile", "resolve", "to_oci", "UNCONFINED",
]
