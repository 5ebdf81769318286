"""``run``/``create`` flags -> the create request, against what the docker CLI sends.

Every case here was recorded from the docker CLI 28.2.2: ``docker create ...``
(or ``docker run ...``) pointed at a small server on a unix socket that
answered ``/_ping`` with API 1.45 and logged each request. ``BASELINE`` is the
body of ``docker create busybox``, verbatim; each case lists only the fields
that differ from it. Relative paths were resolved in ``/work`` and the
environment held ``FROMENV=from-env``.

Error cases are docker's first line of stderr: flag errors (pflag's ``invalid
argument ...``) and parse errors (docker prefixes those with ``docker: ``);
both exit 125.
"""

from __future__ import annotations

import copy
import errno
import json
import shlex
from typing import Any

import pytest

from portside.cli import runopts
from portside.cli.commands.base import FlagError, parse_flags

CWD = "/work"
ENVIRON = {"FROMENV": "from-env"}
FILES = {
    "/work/env.list": b"# a comment\nA=1\n  B=two words\nEMPTY=\nFROMENV\nUNSETVAR\n",
    "/work/labels.txt": b"com.example.a=1\n# c\ncom.example.b\n",
}


def read_file(path: str) -> bytes:
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path) from None


def parse(command: str, argv: str, **kw: Any) -> runopts.CreateRequest:
    flags = runopts.RUN_FLAGS if command == "run" else runopts.CREATE_FLAGS
    opts, args = parse_flags(flags, shlex.split(argv), interspersed=False)
    req = runopts.parse(opts, args, environ=ENVIRON, cwd=CWD, read_file=read_file, **kw)
    if command == "run" and opts.detach:
        req = req.detached()
    return req


# `docker create busybox`, as sent.
BASELINE = json.loads(
    """
{
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": false,
    "AttachStdout": true,
    "AttachStderr": true,
    "Tty": false,
    "OpenStdin": false,
    "StdinOnce": false,
    "Env": null,
    "Cmd": null,
    "Image": "busybox",
    "Volumes": {},
    "WorkingDir": "",
    "Entrypoint": null,
    "OnBuild": null,
    "Labels": {},
    "HostConfig": {
        "Binds": null,
        "ContainerIDFile": "",
        "LogConfig": {
            "Type": "",
            "Config": {}
        },
        "NetworkMode": "default",
        "PortBindings": {},
        "RestartPolicy": {
            "Name": "no",
            "MaximumRetryCount": 0
        },
        "AutoRemove": false,
        "VolumeDriver": "",
        "VolumesFrom": null,
        "ConsoleSize": [
            0,
            0
        ],
        "CapAdd": null,
        "CapDrop": null,
        "CgroupnsMode": "",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": null,
        "GroupAdd": null,
        "IpcMode": "",
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": false,
        "PublishAllPorts": false,
        "ReadonlyRootfs": false,
        "SecurityOpt": null,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 0,
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": -1,
        "OomKillDisable": false,
        "PidsLimit": 0,
        "Ulimits": [],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": null,
        "ReadonlyPaths": null
    },
    "NetworkingConfig": {
        "EndpointsConfig": {
            "default": {
                "IPAMConfig": null,
                "Links": null,
                "Aliases": null,
                "MacAddress": "",
                "DriverOpts": null,
                "GwPriority": 0,
                "NetworkID": "",
                "EndpointID": "",
                "Gateway": "",
                "IPAddress": "",
                "IPPrefixLen": 0,
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DNSNames": null
            }
        }
    }
}
"""
)


# (command, arguments, the create query string, the fields that differ from BASELINE;
#  "HostConfig.X" is a field of HostConfig, "<absent>" a field left out)
CASES = [
    ('create', 'busybox', '', {}),
    ('create', "busybox echo 'hello world'", '', {'Cmd': ['echo', 'hello world']}),
    ('create', '-i -t busybox sh', '',
        {'AttachStdin': True, 'Tty': True, 'OpenStdin': True, 'StdinOnce': True, 'Cmd': ['sh']}),
    ('create', '-i busybox cat', '', {'AttachStdin': True, 'OpenStdin': True, 'StdinOnce': True, 'Cmd': ['cat']}),
    ('create', '-t busybox', '', {'Tty': True}),
    ('create', '-a stdin -a STDOUT busybox', '', {'AttachStdin': True, 'AttachStderr': False}),
    ('create', '-a stderr busybox', '', {'AttachStdout': False}),
    ('create', '-i -a stdout busybox', '',
        {'AttachStdin': True, 'AttachStderr': False, 'OpenStdin': True, 'StdinOnce': True}),
    ('create', '--rm --name web busybox', 'name=web', {'HostConfig.AutoRemove': True}),
    ('create', '-e A=1 busybox', '', {'Env': ['A=1']}),
    ('create', '-e A=1 -e B= -e FROMENV -e UNSETVAR -e A=2 busybox', '',
        {'Env': ['A=2', 'B=', 'FROMENV=from-env', 'UNSETVAR']}),
    ('create', '--env-file env.list busybox', '', {'Env': ['A=1', 'B=two words', 'EMPTY=', 'FROMENV=from-env']}),
    ('create', '--env-file env.list -e Z=9 busybox', '',
        {'Env': ['A=1', 'B=two words', 'EMPTY=', 'FROMENV=from-env', 'Z=9']}),
    ('create', '-w /work -u 1000:1000 --hostname h1 --domainname example.com busybox', '',
        {'Hostname': 'h1', 'Domainname': 'example.com', 'User': '1000:1000', 'WorkingDir': '/work'}),
    ('create', '-h myhost busybox', '', {'Hostname': 'myhost'}),
    ('create', "--entrypoint /bin/sh busybox -c 'echo hi'", '',
        {'Cmd': ['-c', 'echo hi'], 'Entrypoint': ['/bin/sh']}),
    ('create', '--entrypoint= busybox', '', {'Entrypoint': ['']}),
    ('create', "--entrypoint '' busybox", '', {'Entrypoint': ['']}),
    ('create', '-v /data busybox', '', {'Volumes': {'/data': {}}}),
    ('create', '-v /host:/ctr:ro busybox', '', {'HostConfig.Binds': ['/host:/ctr:ro']}),
    ('create', '-v named:/vol busybox', '', {'HostConfig.Binds': ['named:/vol']}),
    ('create', '-v ./rel:/ctr busybox', '', {'HostConfig.Binds': ['/work/rel:/ctr']}),
    ('create', '-v /a:/a -v /b -v /b busybox', '', {'Volumes': {'/b': {}}, 'HostConfig.Binds': ['/a:/a']}),
    ('create', '--mount type=bind,source=/src,target=/dst,readonly busybox', '',
        {'HostConfig.Mounts': [{'Type': 'bind', 'Source': '/src', 'Target': '/dst', 'ReadOnly': True}]}),
    (
        'create',
        '--mount type=volume,src=vol,dst=/v,volume-label=a=b,volume-opt=o=p,volume-driver=local,volume-nocopy busybox',
        '',
        {'HostConfig.Mounts': [{'Type': 'volume',
                                'Source': 'vol',
                                'Target': '/v',
                                'VolumeOptions': {'NoCopy': True,
                                                  'Labels': {'a': 'b'},
                                                  'DriverConfig': {'Name': 'local', 'Options': {'o': 'p'}}}}]}),
    ('create', '--mount type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770 busybox', '',
        {'HostConfig.Mounts': [{'Type': 'tmpfs',
                                'Target': '/t',
                                'TmpfsOptions': {'SizeBytes': 67108864, 'Mode': 1016}}]}),
    ('create', '--mount type=bind,src=/s,dst=/d,bind-propagation=rshared --mount dst=/anon busybox', '',
        {'HostConfig.Mounts': [{'Type': 'bind',
                                'Source': '/s',
                                'Target': '/d',
                                'BindOptions': {'Propagation': 'rshared'}},
                               {'Type': 'volume', 'Target': '/anon'}]}),
    ('create', '--mount type=bind,src=./rel,dst=/d,ro=true busybox', '',
        {'HostConfig.Mounts': [{'Type': 'bind', 'Source': '/work/rel', 'Target': '/d', 'ReadOnly': True}]}),
    ('create', '--tmpfs /run --tmpfs /tmp:rw,size=64m busybox', '',
        {'HostConfig.Tmpfs': {'/run': '', '/tmp': 'rw,size=64m'}}),
    ('create', '--read-only busybox', '', {'HostConfig.ReadonlyRootfs': True}),
    ('create', '-p 8080:80 busybox', '',
        {'ExposedPorts': {'80/tcp': {}},
         'HostConfig.PortBindings': {'80/tcp': [{'HostIp': '', 'HostPort': '8080'}]}}),
    ('create', '-p 127.0.0.1:5353:53/udp -p 443 busybox', '',
        {'ExposedPorts': {'443/tcp': {}, '53/udp': {}},
         'HostConfig.PortBindings': {'443/tcp': [{'HostIp': '', 'HostPort': ''}],
                                     '53/udp': [{'HostIp': '127.0.0.1', 'HostPort': '5353'}]}}),
    ('create', "-p 9000-9001:9000-9001 -p '[::1]:81:80/tcp' busybox", '',
        {'ExposedPorts': {'80/tcp': {}, '9000/tcp': {}, '9001/tcp': {}},
         'HostConfig.PortBindings': {'80/tcp': [{'HostIp': '::1', 'HostPort': '81'}],
                                     '9000/tcp': [{'HostIp': '', 'HostPort': '9000'}],
                                     '9001/tcp': [{'HostIp': '', 'HostPort': '9001'}]}}),
    ('create', '-p 8000-8010:80 busybox', '',
        {'ExposedPorts': {'80/tcp': {}},
         'HostConfig.PortBindings': {'80/tcp': [{'HostIp': '', 'HostPort': '8000-8010'}]}}),
    ('create', '-p published=8081,target=81,protocol=udp busybox', '',
        {'ExposedPorts': {'81/udp': {}},
         'HostConfig.PortBindings': {'81/udp': [{'HostIp': '', 'HostPort': '8081'}]}}),
    ('create', '--expose 7000-7002 --expose 53/udp busybox', '',
        {'ExposedPorts': {'53/udp': {}, '7000/tcp': {}, '7001/tcp': {}, '7002/tcp': {}}}),
    ('create', '-P busybox', '', {'HostConfig.PublishAllPorts': True}),
    ('create', '--network none busybox', '',
        {'HostConfig.NetworkMode': 'none', 'NetworkingConfig.EndpointsConfig': {}}),
    ('create', '--network host busybox', '',
        {'HostConfig.NetworkMode': 'host', 'NetworkingConfig.EndpointsConfig': {}}),
    ('create', '--net bridge busybox', '',
        {'HostConfig.NetworkMode': 'bridge', 'NetworkingConfig.EndpointsConfig': {}}),
    ('create', '--network container:abc busybox', '',
        {'HostConfig.NetworkMode': 'container:abc', 'NetworkingConfig.EndpointsConfig': {}}),
    ('create', '--network mynet busybox', '',
        {'HostConfig.NetworkMode': 'mynet', 'NetworkingConfig.EndpointsConfig': {}}),
    ('create', '--network mynet --network-alias web --ip 10.0.0.5 busybox', '',
        {'HostConfig.NetworkMode': 'mynet',
         'NetworkingConfig.EndpointsConfig': {'mynet': {'IPAMConfig': {'IPv4Address': '10.0.0.5'},
                                                        'Links': None,
                                                        'Aliases': ['web'],
                                                        'MacAddress': '',
                                                        'DriverOpts': None,
                                                        'GwPriority': 0,
                                                        'NetworkID': '',
                                                        'EndpointID': '',
                                                        'Gateway': '',
                                                        'IPAddress': '',
                                                        'IPPrefixLen': 0,
                                                        'IPv6Gateway': '',
                                                        'GlobalIPv6Address': '',
                                                        'GlobalIPv6PrefixLen': 0,
                                                        'DNSNames': None}}}),
    ('create', '--network name=mynet,alias=x,driver-opt=a=b busybox', '',
        {'HostConfig.NetworkMode': 'mynet',
         'NetworkingConfig.EndpointsConfig': {'mynet': {'IPAMConfig': None,
                                                        'Links': None,
                                                        'Aliases': ['x'],
                                                        'MacAddress': '',
                                                        'DriverOpts': {'a': 'b'},
                                                        'GwPriority': 0,
                                                        'NetworkID': '',
                                                        'EndpointID': '',
                                                        'Gateway': '',
                                                        'IPAddress': '',
                                                        'IPPrefixLen': 0,
                                                        'IPv6Gateway': '',
                                                        'GlobalIPv6Address': '',
                                                        'GlobalIPv6PrefixLen': 0,
                                                        'DNSNames': None}}}),
    ('create', '--network n1 --network n2 busybox', '',
        {'HostConfig.NetworkMode': 'n1',
         'NetworkingConfig.EndpointsConfig': {'n1': {'IPAMConfig': None,
                                                     'Links': None,
                                                     'Aliases': None,
                                                     'MacAddress': '',
                                                     'DriverOpts': None,
                                                     'GwPriority': 0,
                                                     'NetworkID': '',
                                                     'EndpointID': '',
                                                     'Gateway': '',
                                                     'IPAddress': '',
                                                     'IPPrefixLen': 0,
                                                     'IPv6Gateway': '',
                                                     'GlobalIPv6Address': '',
                                                     'GlobalIPv6PrefixLen': 0,
                                                     'DNSNames': None},
                                              'n2': {'IPAMConfig': None,
                                                     'Links': None,
                                                     'Aliases': None,
                                                     'MacAddress': '',
                                                     'DriverOpts': None,
                                                     'GwPriority': 0,
                                                     'NetworkID': '',
                                                     'EndpointID': '',
                                                     'Gateway': '',
                                                     'IPAddress': '',
                                                     'IPPrefixLen': 0,
                                                     'IPv6Gateway': '',
                                                     'GlobalIPv6Address': '',
                                                     'GlobalIPv6PrefixLen': 0,
                                                     'DNSNames': None}}}),
    ('create', '--mac-address 02:42:ac:11:00:02 busybox', '',
        {'NetworkingConfig.EndpointsConfig': {'default': {'IPAMConfig': None,
                                                          'Links': None,
                                                          'Aliases': None,
                                                          'MacAddress': '02:42:ac:11:00:02',
                                                          'DriverOpts': None,
                                                          'GwPriority': 0,
                                                          'NetworkID': '',
                                                          'EndpointID': '',
                                                          'Gateway': '',
                                                          'IPAddress': '',
                                                          'IPPrefixLen': 0,
                                                          'IPv6Gateway': '',
                                                          'GlobalIPv6Address': '',
                                                          'GlobalIPv6PrefixLen': 0,
                                                          'DNSNames': None}}}),
    ('create', '--network mynet --link other:alias busybox', '',
        {'HostConfig.NetworkMode': 'mynet',
         'HostConfig.Links': ['other:alias'],
         'NetworkingConfig.EndpointsConfig': {'mynet': {'IPAMConfig': None,
                                                        'Links': ['other:alias'],
                                                        'Aliases': None,
                                                        'MacAddress': '',
                                                        'DriverOpts': None,
                                                        'GwPriority': 0,
                                                        'NetworkID': '',
                                                        'EndpointID': '',
                                                        'Gateway': '',
                                                        'IPAddress': '',
                                                        'IPPrefixLen': 0,
                                                        'IPv6Gateway': '',
                                                        'GlobalIPv6Address': '',
                                                        'GlobalIPv6PrefixLen': 0,
                                                        'DNSNames': None}}}),
    ('create', '--link other:alias busybox', '', {'HostConfig.Links': ['other:alias']}),
    ('create', '--cap-add net_admin --cap-add SYS_TIME --cap-add CAP_NET_ADMIN --cap-drop all busybox', '',
        {'HostConfig.CapAdd': ['CAP_NET_ADMIN', 'CAP_SYS_TIME'], 'HostConfig.CapDrop': ['ALL']}),
    ('create', '--privileged busybox', '', {'HostConfig.Privileged': True}),
    (
        'create',
        '--security-opt no-new-privileges --security-opt apparmor=unconfined --security-opt label:disable busybox',
        '',
        {'HostConfig.SecurityOpt': ['no-new-privileges', 'apparmor=unconfined', 'label:disable']}),
    ('create', '--security-opt systempaths=unconfined --security-opt seccomp=unconfined busybox', '',
        {'HostConfig.SecurityOpt': ['seccomp=unconfined'],
         'HostConfig.MaskedPaths': [],
         'HostConfig.ReadonlyPaths': []}),
    ('create', '--init busybox', '', {'HostConfig.Init': True}),
    ('create', '--init=false busybox', '', {'HostConfig.Init': False}),
    ('create', '--ulimit nofile=1024:2048 --ulimit nproc=10 --ulimit core=-1 busybox', '',
        {'HostConfig.Ulimits': [{'Name': 'core', 'Hard': -1, 'Soft': -1},
                                {'Name': 'nofile', 'Hard': 2048, 'Soft': 1024},
                                {'Name': 'nproc', 'Hard': 10, 'Soft': 10}]}),
    ('create', '-m 512m --memory-swap 1g --memory-reservation 256m busybox', '',
        {'HostConfig.Memory': 536870912,
         'HostConfig.MemoryReservation': 268435456,
         'HostConfig.MemorySwap': 1073741824}),
    ('create', '--memory 1.5g --memory-swap -1 busybox', '',
        {'HostConfig.Memory': 1610612736, 'HostConfig.MemorySwap': -1}),
    (
        'create',
        '--cpus 1.5 --cpu-shares 512 --cpuset-cpus 0-1 --cpuset-mems 0 --cpu-period 100000 --cpu-quota 50000 busybox',
        '',
        {'HostConfig.CpuShares': 512,
         'HostConfig.NanoCpus': 1500000000,
         'HostConfig.CpuPeriod': 100000,
         'HostConfig.CpuQuota': 50000,
         'HostConfig.CpusetCpus': '0-1',
         'HostConfig.CpusetMems': '0'}),
    ('create', '--cpus .25 -c 10 busybox', '', {'HostConfig.CpuShares': 10, 'HostConfig.NanoCpus': 250000000}),
    (
        'create',
        '--pids-limit 100 --shm-size 128m --oom-kill-disable --oom-score-adj 500 --memory-swappiness 10 busybox',
        '',
        {'HostConfig.OomScoreAdj': 500,
         'HostConfig.ShmSize': 134217728,
         'HostConfig.MemorySwappiness': 10,
         'HostConfig.OomKillDisable': True,
         'HostConfig.PidsLimit': 100}),
    ('create', '--pids-limit -1 busybox', '', {'HostConfig.PidsLimit': -1}),
    ('create', '--restart always busybox', '',
        {'HostConfig.RestartPolicy': {'Name': 'always', 'MaximumRetryCount': 0}}),
    ('create', '--restart on-failure:3 busybox', '',
        {'HostConfig.RestartPolicy': {'Name': 'on-failure', 'MaximumRetryCount': 3}}),
    ('create', '--restart unless-stopped busybox', '',
        {'HostConfig.RestartPolicy': {'Name': 'unless-stopped', 'MaximumRetryCount': 0}}),
    ('create', '--restart no --rm busybox', '', {'HostConfig.AutoRemove': True}),
    ('create', "--restart '' busybox", '', {'HostConfig.RestartPolicy': {'Name': '', 'MaximumRetryCount': 0}}),
    ('create', '--label a=b -l c --label-file labels.txt busybox', '',
        {'Labels': {'a': 'b', 'c': '', 'com.example.a': '1'}}),
    ('create', '--stop-signal SIGINT --stop-timeout 5 busybox', '', {'StopSignal': 'SIGINT', 'StopTimeout': 5}),
    ('create', '--stop-timeout 0 busybox', '', {'StopTimeout': 0}),
    ('create', '--userns host --ipc host --pid host --uts host --cgroupns private busybox', '',
        {'HostConfig.CgroupnsMode': 'private',
         'HostConfig.IpcMode': 'host',
         'HostConfig.PidMode': 'host',
         'HostConfig.UTSMode': 'host',
         'HostConfig.UsernsMode': 'host'}),
    ('create', '--ipc shareable --pid container:abc busybox', '',
        {'HostConfig.IpcMode': 'shareable', 'HostConfig.PidMode': 'container:abc'}),
    (
        'create',
        '--sysctl net.ipv4.ip_forward=1 --sysctl kernel.shmmax=1000 --sysctl fs.mqueue.msg_max=100 busybox',
        '',
        {'HostConfig.Sysctls': {'fs.mqueue.msg_max': '100', 'kernel.shmmax': '1000', 'net.ipv4.ip_forward': '1'}}),
    (
        'create',
        "--add-host db:10.0.0.2 --add-host gw=host-gateway --add-host 'v6:[::1]' --add-host v6b=::2 busybox",
        '',
        {'HostConfig.ExtraHosts': ['db:10.0.0.2', 'gw:host-gateway', 'v6:::1', 'v6b:::2']}),
    (
        'create',
        "--dns 8.8.8.8 --dns ' 1.1.1.1 ' --dns-search example.com --dns-search . --dns-option ndots:2 --dns-opt rotate busybox",
        '',
        {'HostConfig.Dns': ['8.8.8.8', '1.1.1.1'],
         'HostConfig.DnsOptions': ['ndots:2', 'rotate'],
         'HostConfig.DnsSearch': ['example.com', '.']}),
    ('create', '--dns ::1 busybox', '', {'HostConfig.Dns': ['::1']}),
    ('create', '--workdir /w busybox', '', {'WorkingDir': '/w'}),
    ('create', '--platform linux/amd64 busybox', 'platform=linux%2Famd64', {}),
    ('create', '--pull never busybox', '', {}),
    (
        'create',
        '--log-driver json-file --log-opt max-size=10m --log-opt max-file=3 --log-opt flag busybox',
        '',
        {'HostConfig.LogConfig': {'Type': 'json-file', 'Config': {'flag': '', 'max-file': '3', 'max-size': '10m'}}}),
    ('create', '--log-driver none busybox', '', {'HostConfig.LogConfig': {'Type': 'none', 'Config': {}}}),
    ('create', '--volumes-from c1 --volumes-from c2:ro busybox', '', {'HostConfig.VolumesFrom': ['c1', 'c2:ro']}),
    (
        'create',
        '--device /dev/fuse --device /dev/sda:/dev/xvda:rwm --device /dev/null:r --device /dev/zero:/z busybox',
        '',
        {'HostConfig.Devices': [{'PathOnHost': '/dev/fuse',
                                 'PathInContainer': '/dev/fuse',
                                 'CgroupPermissions': 'rwm'},
                                {'PathOnHost': '/dev/sda',
                                 'PathInContainer': '/dev/xvda',
                                 'CgroupPermissions': 'rwm'},
                                {'PathOnHost': '/dev/null',
                                 'PathInContainer': '/dev/null',
                                 'CgroupPermissions': 'r'},
                                {'PathOnHost': '/dev/zero', 'PathInContainer': '/z', 'CgroupPermissions': 'rwm'}]}),
    (
        'create',
        "--health-cmd 'curl -f http://localhost && true' --health-interval 30s --health-timeout 5s --health-retries 3 --health-start-period 1m10s --health-start-interval 2s busybox",
        '',
        {'Healthcheck': {'Test': ['CMD-SHELL', 'curl -f http://localhost && true'],
                         'Interval': 30000000000,
                         'Timeout': 5000000000,
                         'StartPeriod': 70000000000,
                         'StartInterval': 2000000000,
                         'Retries': 3}}),
    ('create', '--health-interval 1.5s busybox', '', {'Healthcheck': {'Interval': 1500000000}}),
    ('create', '--no-healthcheck busybox', '', {'Healthcheck': {'Test': ['NONE']}}),
    ('create', '--group-add audio --group-add 1000 busybox', '', {'HostConfig.GroupAdd': ['audio', '1000']}),
    (
        'create',
        '--cgroup-parent /mygroup --runtime runc --isolation default --volume-driver local busybox',
        '',
        {'HostConfig.VolumeDriver': 'local',
         'HostConfig.Runtime': 'runc',
         'HostConfig.Isolation': 'default',
         'HostConfig.CgroupParent': '/mygroup'}),
    ('create', '--storage-opt size=10G busybox', '', {'HostConfig.StorageOpt': {'size': '10G'}}),
    ('create', "--device-cgroup-rule 'c 1:3 mr' --device-cgroup-rule 'b *:* rwm' busybox", '',
        {'HostConfig.DeviceCgroupRules': ['c 1:3 mr', 'b *:* rwm']}),
    ('create', '--annotation a=b --annotation c busybox', '', {'HostConfig.Annotations': {'a': 'b', 'c': ''}}),
    (
        'create',
        '--blkio-weight 300 --blkio-weight-device /dev/sda:200 --device-read-bps /dev/sda:1mb --device-write-bps /dev/sdb:10 --device-read-iops /dev/sda:1000 --device-write-iops /dev/sda:100 busybox',
        '',
        {'HostConfig.BlkioWeight': 300,
         'HostConfig.BlkioWeightDevice': [{'Path': '/dev/sda', 'Weight': 200}],
         'HostConfig.BlkioDeviceReadBps': [{'Path': '/dev/sda', 'Rate': 1048576}],
         'HostConfig.BlkioDeviceWriteBps': [{'Path': '/dev/sdb', 'Rate': 10}],
         'HostConfig.BlkioDeviceReadIOps': [{'Path': '/dev/sda', 'Rate': 1000}],
         'HostConfig.BlkioDeviceWriteIOps': [{'Path': '/dev/sda', 'Rate': 100}]}),
    ('create', '--cpu-rt-period 1000 --cpu-rt-runtime 500 busybox', '',
        {'HostConfig.CpuRealtimePeriod': 1000, 'HostConfig.CpuRealtimeRuntime': 500}),
    ('create', 'busybox:1.36 true', '', {'Cmd': ['true'], 'Image': 'busybox:1.36'}),
    (
        'create',
        'localhost:5000/ns/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        '',
        {'Image': 'localhost:5000/ns/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}),
    ('run', 'busybox', '', {}),
    ('run', '-d busybox', '', {'AttachStdout': False, 'AttachStderr': False}),
    ('run', '-d -i busybox', '', {'AttachStdout': False, 'AttachStderr': False, 'OpenStdin': True}),
    ('run', '-i busybox', '', {'AttachStdin': True, 'OpenStdin': True, 'StdinOnce': True}),
    ('run', '--rm -d --name x busybox sleep 1', 'name=x',
        {'AttachStdout': False, 'AttachStderr': False, 'Cmd': ['sleep', '1'], 'HostConfig.AutoRemove': True}),
    ('run', '--detach-keys ctrl-x,x -d busybox', '', {'AttachStdout': False, 'AttachStderr': False}),
    ('run', '--detach-keys bogus -d busybox', '', {'AttachStdout': False, 'AttachStderr': False}),
    ('create', '--ipc bogus busybox', '', {'HostConfig.IpcMode': 'bogus'}),
    ('create', '--network name= busybox', '',
        {'HostConfig.NetworkMode': 'name=', 'NetworkingConfig.EndpointsConfig': {}}),
    ('create', '--tmpfs relative busybox', '', {'HostConfig.Tmpfs': {'relative': ''}}),
]

# (arguments of `docker create`, which kind of error, docker's message)
ERRORS = [
    ('--sig-proxy=false busybox', 'flag', 'unknown flag: --sig-proxy'),
    ('-m x busybox', 'flag', 'invalid argument "x" for "-m, --memory" flag: invalid size: \'x\''),
    (
        '--memory-reservation 1q busybox',
        'flag',
        'invalid argument "1q" for "--memory-reservation" flag: invalid suffix: \'q\'',
    ),
    ('--memory-swap z busybox', 'flag', 'invalid argument "z" for "--memory-swap" flag: invalid size: \'z\''),
    ('--shm-size -1 busybox', 'flag', 'invalid argument "-1" for "--shm-size" flag: invalid size: \'-1\''),
    (
        '--cpus abc busybox',
        'flag',
        'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number',
    ),
    (
        '--cpus 0.0000000001 busybox',
        'flag',
        'invalid argument "0.0000000001" for "--cpus" flag: value is too precise',
    ),
    (
        '--cpu-shares abc busybox',
        'flag',
        'invalid argument "abc" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "abc": invalid syntax',
    ),
    (
        '--ulimit nofile busybox',
        'flag',
        'invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile',
    ),
    (
        '--ulimit bogus=1 busybox',
        'flag',
        'invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus',
    ),
    (
        '--ulimit nofile=2:1 busybox',
        'flag',
        'invalid argument "nofile=2:1" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1',
    ),
    (
        '--ulimit nofile=x busybox',
        'flag',
        'invalid argument "nofile=x" for "--ulimit" flag: strconv.ParseInt: parsing "x": invalid syntax',
    ),
    (
        '--ulimit nofile=1:2:3 busybox',
        'flag',
        'invalid argument "nofile=1:2:3" for "--ulimit" flag: too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`',
    ),
    (
        '--restart on-failure:x busybox',
        'options',
        'invalid restart policy format: maximum retry count must be an integer',
    ),
    ('--restart :3 busybox', 'options', 'invalid restart policy format: no policy provided before colon'),
    ('--rm --restart always busybox', 'options', 'conflicting options: cannot specify both --restart and --rm'),
    (
        '-a bogus busybox',
        'flag',
        'invalid argument "bogus" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR',
    ),
    ('-e =x busybox', 'flag', 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
    (
        "--label ' =x' busybox",
        'flag',
        'invalid argument " =x" for "-l, --label" flag: invalid label \' =x\': empty name',
    ),
    (
        "--label 'a b=x' busybox",
        'flag',
        'invalid argument "a b=x" for "-l, --label" flag: label \'a b\' contains whitespaces',
    ),
    (
        '--add-host bad busybox',
        'flag',
        'invalid argument "bad" for "--add-host" flag: bad format for add-host: "bad"',
    ),
    (
        '--add-host h:notip busybox',
        'flag',
        'invalid argument "h:notip" for "--add-host" flag: invalid IP address in add-host: "notip"',
    ),
    (
        '--dns notip busybox',
        'flag',
        'invalid argument "notip" for "--dns" flag: IP address is not correctly formatted: notip',
    ),
    (
        '--dns-search -bad busybox',
        'flag',
        'invalid argument "-bad" for "--dns-search" flag: -bad is not a valid domain',
    ),
    (
        '--sysctl kernel.foo=1 busybox',
        'flag',
        'invalid argument "kernel.foo=1" for "--sysctl" flag: sysctl \'kernel.foo=1\' is not allowed',
    ),
    (
        '--sysctl net.x busybox',
        'flag',
        'invalid argument "net.x" for "--sysctl" flag: sysctl \'net.x\' is not allowed',
    ),
    ('--pid bogus busybox', 'options', '--pid: invalid PID mode'),
    ('--uts bogus busybox', 'options', '--uts: invalid UTS mode'),
    ('--userns bogus busybox', 'options', '--userns: invalid USER mode'),
    ('--cgroupns bogus busybox', 'options', '--cgroupns: invalid CGROUP mode'),
    ('--mount type=bind busybox', 'flag', 'invalid argument "type=bind" for "--mount" flag: target is required'),
    (
        '--mount foo busybox',
        'flag',
        'invalid argument "foo" for "--mount" flag: invalid field \'foo\' must be a key=value pair',
    ),
    (
        '--mount type=tmpfs,dst=/x,volume-nocopy busybox',
        'flag',
        'invalid argument "type=tmpfs,dst=/x,volume-nocopy" for "--mount" flag: cannot mix \'volume-*\' options with mount type \'tmpfs\'',
    ),
    (
        '--mount type=bind,dst=/x,bogus=1 busybox',
        'flag',
        'invalid argument "type=bind,dst=/x,bogus=1" for "--mount" flag: unexpected key \'bogus\' in \'bogus=1\'',
    ),
    (
        '--mount type=tmpfs,dst=/x,tmpfs-size=big busybox',
        'flag',
        'invalid argument "type=tmpfs,dst=/x,tmpfs-size=big" for "--mount" flag: invalid value for tmpfs-size: big',
    ),
    ('-p 70000 busybox', 'options', 'invalid containerPort: 70000'),
    ('-p abc busybox', 'options', 'invalid containerPort: abc'),
    ('-p 1.2.3:80:80 busybox', 'options', 'invalid IP address: 1.2.3'),
    ('-p 80/bogus busybox', 'options', 'invalid proto: bogus'),
    (
        '-p 8000-8001:80-82 busybox',
        'options',
        'invalid ranges specified for container and host Ports: 80-82 and 8000-8001',
    ),
    (
        '-p published=80,target busybox',
        'options',
        "invalid publish opts format (should be name=value but got 'target')",
    ),
    ('--expose 1:2 busybox', 'options', 'invalid port format for --expose: 1:2'),
    (
        '--expose abc busybox',
        'options',
        'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax',
    ),
    ('--security-opt foo busybox', 'options', 'Invalid --security-opt: "foo"'),
    (
        '--security-opt seccomp=/nonexistent.json busybox',
        'options',
        'opening seccomp profile (/nonexistent.json) failed: open /nonexistent.json: no such file or directory',
    ),
    ('--log-driver none --log-opt a=b busybox', 'options', 'invalid logging opts for driver none'),
    ('--no-healthcheck --health-cmd x busybox', 'options', '--no-healthcheck conflicts with --health-* options'),
    ('--health-interval -1s busybox', 'options', '--health-interval cannot be negative'),
    (
        '--health-interval abc busybox',
        'flag',
        'invalid argument "abc" for "--health-interval" flag: time: invalid duration "abc"',
    ),
    ('--health-retries -1 busybox', 'options', '--health-retries cannot be negative'),
    (
        '--pull sometimes busybox',
        'options',
        'invalid pull option: \'sometimes\': must be one of "always", "missing" or "never"',
    ),
    (
        '--stop-timeout x busybox',
        'flag',
        'invalid argument "x" for "--stop-timeout" flag: strconv.ParseInt: parsing "x": invalid syntax',
    ),
    (
        '--pids-limit x busybox',
        'flag',
        'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax',
    ),
    ('--memory-swappiness 200 busybox', 'options', 'invalid value: 200. Valid memory swappiness range is 0-100'),
    ('--mac-address nope busybox', 'options', 'nope is not a valid mac address'),
    ('--network-alias x busybox', 'options', 'network-scoped aliases are only supported for user-defined networks'),
    (
        '--network none --network mynet busybox',
        'options',
        'conflicting options: cannot attach both user-defined and non-user-defined network-modes',
    ),
    ('--network n1 --network n1 busybox', 'options', 'network "n1" is specified multiple times'),
    (
        '--device-cgroup-rule bad busybox',
        'flag',
        'invalid argument "bad" for "--device-cgroup-rule" flag: invalid device cgroup format \'bad\'',
    ),
    ('--device relative busybox', 'options', 'relative is not an absolute path'),
    ('--device /a:/b:x busybox', 'options', 'bad mode specified: x'),
    ('--env-file /nonexistent busybox', 'options', 'open /nonexistent: no such file or directory'),
    ('--label-file /nonexistent busybox', 'options', 'open /nonexistent: no such file or directory'),
    (
        '--init=maybe busybox',
        'flag',
        'invalid argument "maybe" for "--init" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
    ),
    (
        '--blkio-weight 70000 busybox',
        'flag',
        'invalid argument "70000" for "--blkio-weight" flag: strconv.ParseUint: parsing "70000": value out of range',
    ),
    (
        '--blkio-weight-device /dev/sda busybox',
        'flag',
        'invalid argument "/dev/sda" for "--blkio-weight-device" flag: bad format: /dev/sda',
    ),
    (
        '--device-read-bps /dev/sda:x busybox',
        'flag',
        'invalid argument "/dev/sda:x" for "--device-read-bps" flag: invalid rate for device: /dev/sda:x. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb',
    ),
    ('--storage-opt x busybox', 'options', 'invalid storage option'),
    ("-v '' busybox", 'options', 'invalid empty volume spec'),
    ('-v /a::/b busybox', 'options', 'invalid spec: /a::/b: empty section between colons'),
    ('-v /a:/b:/c:/d busybox', 'options', 'invalid spec: /a:/b:/c:/d: too many colons'),
    (
        '--oom-kill-disable=x busybox',
        'flag',
        'invalid argument "x" for "--oom-kill-disable" flag: strconv.ParseBool: parsing "x": invalid syntax',
    ),
    ('-e A=1 -m x --cpus y busybox', 'flag', 'invalid argument "x" for "-m, --memory" flag: invalid size: \'x\''),
    ('--health-start-interval -2s busybox', 'options', '--health-start-interval cannot be negative'),
    (
        '--network name=n,bogus=1 busybox',
        'flag',
        'invalid argument "name=n,bogus=1" for "--network" flag: invalid field key bogus',
    ),
    ('--link a:b:c busybox', 'flag', 'invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c'),
]


def expected(diff: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(BASELINE)
    for key, value in diff.items():
        target = body
        if "." in key:
            section, key = key.split(".", 1)
            target = body[section]
        if value == "<absent>":
            del target[key]
        else:
            target[key] = value
    return body


# The field order of moby's Config and HostConfig structs (Go encodes fields in declaration order).
CONFIG_ORDER = [
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell",
    "HostConfig", "NetworkingConfig",
]
HOST_CONFIG_ORDER = [
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "ConsoleSize", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode",
    "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode",
    "UsernsMode", "ShmSize", "Sysctls", "Runtime", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent",
    "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
    "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "KernelMemory", "KernelMemoryTCP",
    "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount",
    "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "Mounts", "MaskedPaths", "ReadonlyPaths", "Init",
]


def test_baseline_is_byte_for_byte_docker_s() -> None:
    body = parse("create", "busybox").body
    assert json.dumps(body) == json.dumps(BASELINE)


@pytest.mark.parametrize(("command", "argv", "query", "diff"), CASES, ids=[f"{c} {a}" for c, a, _, _ in CASES])
def test_create_request_as_docker_sends_it(command: str, argv: str, query: str, diff: dict[str, Any]) -> None:
    from portside.cli.client import _encode_query

    req = parse(command, argv)
    assert req.body == expected(diff)
    assert _encode_query(req.query()) == query
    # Go writes struct fields in declaration order: so must we.
    assert list(req.body) == [k for k in CONFIG_ORDER if k in req.body]
    assert list(req.host_config) == [k for k in HOST_CONFIG_ORDER if k in req.host_config]


@pytest.mark.parametrize(("argv", "kind", "message"), ERRORS, ids=[a for a, _, _ in ERRORS])
def test_refused_as_docker_refuses(argv: str, kind: str, message: str) -> None:
    # Flag errors come from the flag parser (int, bool) or from runopts (every other type).
    error = (runopts.FlagValueError, FlagError) if kind == "flag" else runopts.OptionsError
    with pytest.raises(error) as e:
        parse("create", argv)
    assert str(e.value) == message


def test_console_size_is_the_terminal_s() -> None:
    assert parse("create", "busybox", console_size=(24, 80)).host_config["ConsoleSize"] == [24, 80]


def test_relative_files_are_read_from_the_working_directory() -> None:
    seen = []

    def reader(path: str) -> bytes:
        seen.append(path)
        return b"X=1\n"

    opts, args = parse_flags(runopts.CREATE_FLAGS, ["--env-file", "e.env", "--env-file", "/abs.env", "busybox"],
                             interspersed=False)
    req = runopts.parse(opts, args, environ={}, cwd="/home/u", read_file=reader)
    assert seen == ["/home/u/e.env", "/abs.env"]
    assert req.body["Env"] == ["X=1", "X=1"]


def test_aliases_keep_command_line_order() -> None:
    req = parse("create", "--net n1 --network n2 --dns-opt a --dns-option b --dns-opt c busybox")
    assert req.host_config["NetworkMode"] == "n1"
    assert list(req.body["NetworkingConfig"]["EndpointsConfig"]) == ["n1", "n2"]
    assert req.host_config["DnsOptions"] == ["a", "b", "c"]


def test_platform_from_the_environment() -> None:
    opts, args = parse_flags(runopts.CREATE_FLAGS, ["busybox"], interspersed=False)
    req = runopts.parse(opts, args, environ={"DOCKER_DEFAULT_PLATFORM": "Linux/ARM64"}, cwd=CWD)
    assert req.query() == [("platform", "linux/arm64")]


def test_run_flags_are_not_create_flags() -> None:
    with pytest.raises(Exception, match="unknown flag: --sig-proxy"):
        parse("create", "--sig-proxy=false busybox")
    req = parse("run", "--sig-proxy=false -d --detach-keys ctrl-x busybox")
    assert not req.attach_stdout


def test_exec_env() -> None:
    opts, _ = parse_flags(runopts.RUN_FLAGS, ["--env-file", "env.list", "-e", "FROMENV", "-e", "X=1", "busybox"],
                          interspersed=False)
    env = runopts.exec_env(opts, environ=ENVIRON, cwd=CWD, read_file=read_file)
    assert env == ["A=1", "B=two words", "EMPTY=", "FROMENV=from-env", "FROMENV=from-env", "X=1"]
    opts, _ = parse_flags(runopts.RUN_FLAGS, ["-e", "=x", "busybox"], interspersed=False)
    with pytest.raises(runopts.FlagValueError, match='invalid argument "=x" for "-e, --env" flag'):
        runopts.exec_env(opts, environ={}, cwd=CWD)
