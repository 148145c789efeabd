"""A real build on the open toolchain (a few minutes): the ULX3S board top, from elaboration to a
bitstream, with its report row. The full sweep is `make synth`."""

from pathlib import Path

from virtio_gpio.hdl.boards.ulx3s import ULX3S
from virtio_gpio.synth import report, sweep
from virtio_gpio.synth.targets import PARTS

BITS_PER_DP16KD = 16 * 1024  # data bits of one ECP5 block RAM


def test_ulx3s_board_builds_to_a_bitstream_at_its_clock(tmp_path):
    row, = sweep.run(sweep.board_jobs(ULX3S.name, tmp_path), parallel=1, out=tmp_path,
                     progress=lambda line: None)
    assert row["status"] == report.MET, f"{row['message']} (log: {row['build_dir']}/build.log)"
    assert Path(row["bitstream"]).stat().st_size > 0
    assert min(f["achieved_mhz"] for f in row["fmax_mhz"].values()) >= ULX3S.clock_mhz

    # The part's datasheet capacities, used for the percentages, are what nextpnr sees.
    capacity = PARTS[ULX3S.part].capacity
    for resource, available in ((capacity.logic_resource, capacity.logic),
                                (capacity.ff_resource, capacity.ff),
                                (capacity.bram_resource, capacity.bram)):
        assert row["placed"][resource]["available"] == available, resource

    # The guest memory is in block RAM, and the device is only part of the placed design.
    assert row["placed"]["DP16KD"]["used"] >= ULX3S.memory_bytes * 8 // BITS_PER_DP16KD
    device = row["device"]
    assert 0 < device["lut4"] < row["placed"][capacity.logic_resource]["used"]
    assert 0 < device["ff"] < row["placed"][capacity.ff_resource]["used"]
