"""Container networking: network records and IPAM, bridges and veths, firewall rules, published ports, name resolution.

Sits above the runtime (it enters network namespaces) and below containers
(which attach their endpoints at start and release them at exit).
"""
