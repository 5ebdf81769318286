"""HostConfig → Resources: dockerd's defaults, conversions and refusals, message for message."""

from __future__ import annotations

import pytest

from portside.cgroups.resources import (
    HostLimits,
    Resources,
    blkio_to_io_weight,
    from_host_config,
    parse_list,
    shares_to_weight,
)
from portside.errors import InvalidArgument

HOST = HostLimits(ncpu=2, cpus="0-1", mems="0")
MiB = 1024 * 1024


def convert(**host_config: object) -> Resources:
    return from_host_config(host_config, host=HOST)


def refused(**host_config: object) -> str:
    with pytest.raises(InvalidArgument) as e:
        from_host_config(host_config, host=HOST)
    return str(e.value)


def test_empty_host_config_is_unlimited() -> None:
    assert convert() == Resources()
    # what the docker CLI sends when no flag is given
    assert convert(Memory=0, MemorySwap=0, MemoryReservation=0, CpuShares=0, NanoCpus=0, CpuQuota=0, CpuPeriod=0,
                   CpusetCpus="", CpusetMems="", PidsLimit=None, BlkioWeight=0, OomKillDisable=False) == Resources()


@pytest.mark.parametrize(
    ("memory", "memory_swap", "expected_swap"),
    [
        (256 * MiB, 0, 512 * MiB),          # -m 256m: as much swap as memory (dockerd's default)
        (256 * MiB, 512 * MiB, 512 * MiB),  # --memory-swap is the total
        (256 * MiB, 256 * MiB, 256 * MiB),  # equal: no swap at all
        (256 * MiB, -1, None),              # unlimited swap
    ],
)
def test_memory_swap_semantics(memory: int, memory_swap: int, expected_swap: int | None) -> None:
    r = convert(Memory=memory, MemorySwap=memory_swap)
    assert (r.memory, r.memory_swap) == (memory, expected_swap)


def test_memory_refusals() -> None:
    assert refused(Memory=4 * MiB) == "Minimum memory limit allowed is 6MB"
    assert refused(Memory=-5) == "Minimum memory limit allowed is 6MB"
    assert refused(Memory=512 * MiB, MemorySwap=256 * MiB) == \
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    assert refused(MemorySwap=512 * MiB) == \
        "You should always set the Memory limit when using Memoryswap limit, see usage"
    assert refused(MemoryReservation=1 * MiB) == "Minimum memory reservation allowed is 6MB"
    assert refused(Memory=64 * MiB, MemoryReservation=128 * MiB) == \
        "Minimum memory limit can not be less than memory reservation limit, see usage"
    assert "MemorySwap" in refused(Memory=64 * MiB, MemorySwap=-2)


def test_minimum_memory_is_accepted() -> None:
    assert convert(Memory=6 * MiB).memory == 6 * MiB
    assert convert(MemoryReservation=64 * MiB).memory_reservation == 64 * MiB
    assert convert(MemorySwap=-1) == Resources()


@pytest.mark.parametrize(
    ("nano", "quota"),
    [(1_500_000_000, 150_000), (10_000_000, 1_000), (2_000_000_000, 200_000), (333_333_333, 33_333)],
)
def test_cpus_become_a_quota_over_100ms(nano: int, quota: int) -> None:
    r = convert(NanoCpus=nano)
    assert (r.cpu_quota, r.cpu_period) == (quota, 100_000)


def test_cpu_refusals() -> None:
    assert refused(NanoCpus=3_000_000_000) == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    assert refused(NanoCpus=-1) == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    assert refused(NanoCpus=1_000_000_000, CpuPeriod=50_000) == \
        "Conflicting options: Nano CPUs and CPU Period cannot both be set"
    assert refused(NanoCpus=1_000_000_000, CpuQuota=50_000) == \
        "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
    assert refused(CpuPeriod=999) == \
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
    assert refused(CpuPeriod=1_000_001) == \
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
    assert refused(CpuQuota=999) == "CPU cfs quota can not be less than 1ms (i.e. 1000)"
    assert refused(CpuShares=-1) == "shares: invalid argument"


def test_quota_and_period_pass_through() -> None:
    r = convert(CpuQuota=50_000, CpuPeriod=200_000, CpuShares=512)
    assert (r.cpu_quota, r.cpu_period, r.cpu_shares) == (50_000, 200_000, 512)
    assert convert(CpuQuota=-1).cpu_quota is None            # the kernel's "no limit"
    assert convert(CpuPeriod=50_000).cpu_quota is None
    assert convert(NanoCpus=1_000_000_000, CpuQuota=-1).cpu_quota is None   # an explicit quota wins, as in moby


def test_cpuset() -> None:
    r = convert(CpusetCpus="0-1", CpusetMems="0")
    assert (r.cpuset_cpus, r.cpuset_mems) == ("0-1", "0")
    assert refused(CpusetCpus="3") == "Requested CPUs are not available - requested 3, available: 0-1"
    assert refused(CpusetMems="1") == "Requested memory nodes are not available - requested 1, available: 0"
    assert refused(CpusetCpus="1-0") == "Invalid value 1-0 for cpuset cpus: invalid format: 1-0"
    assert refused(CpusetCpus="a") == "Invalid value a for cpuset cpus: invalid format: a"
    assert refused(CpusetCpus="0-9223372036854775807") == \
        "Invalid value 0-9223372036854775807 for cpuset cpus: value of out range, maximum is 8192"


def test_parse_list_as_moby() -> None:
    assert parse_list("") == set()
    assert parse_list("7") == {7}
    assert parse_list("0,3-4,7,8-10") == {0, 3, 4, 7, 8, 9, 10}
    assert parse_list("0-0,0,1-7") == set(range(8))
    assert parse_list("03,1-3") == {1, 2, 3}
    assert parse_list("+2") == {2}                   # Go's Atoi takes a sign
    for bad in ("-1", "1-", ",", "1,,2", " 1", "1_0", "٣"):
        with pytest.raises(ValueError, match="invalid format"):
            parse_list(bad)


def test_pids_and_blkio() -> None:
    assert convert(PidsLimit=100).pids_limit == 100
    assert convert(PidsLimit=0).pids_limit is None      # 0 and -1 both mean unlimited
    assert convert(PidsLimit=-1).pids_limit is None
    assert convert(BlkioWeight=300).blkio_weight == 300
    assert refused(BlkioWeight=5) == "Range of blkio weight is from 10 to 1000"
    assert refused(BlkioWeight=1001) == "Range of blkio weight is from 10 to 1000"
    assert convert(OomKillDisable=True).oom_kill_disable is True


def test_wrong_json_types() -> None:
    assert refused(Memory="1g") == \
        "json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64"
    assert refused(PidsLimit=True) == \
        "json: cannot unmarshal bool into Go struct field HostConfig.PidsLimit of type int64"
    assert refused(OomKillDisable=1) == \
        "json: cannot unmarshal number into Go struct field HostConfig.OomKillDisable of type bool"
    assert refused(CpusetCpus=[0]) == \
        "json: cannot unmarshal array into Go struct field HostConfig.CpusetCpus of type string"


def test_resources_refuse_swap_without_memory() -> None:
    with pytest.raises(InvalidArgument):
        Resources(memory_swap=64 * MiB)
    with pytest.raises(InvalidArgument):
        Resources(memory=64 * MiB, memory_swap=32 * MiB)


@pytest.mark.parametrize(
    ("shares", "weight"),
    # runc/crun's curve since 2025: minimum, default and maximum map onto each other
    [(2, 1), (1, 1), (3, 2), (100, 17), (512, 59), (1024, 100), (2048, 174), (262_143, 10_000), (262_144, 10_000),
     (1_000_000, 10_000)],
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (500, 4950), (1000, 10000), (100, 910)])
def test_blkio_to_io_weight(blkio: int, io: int) -> None:
    assert blkio_to_io_weight(blkio) == io


def test_host_limits_probe_reads_this_machine() -> None:
    host = HostLimits.probe()
    assert host.ncpu >= 1
    assert 0 in parse_list(host.cpus)
    assert parse_list(host.mems)
