import numpy as np
import pytest

from sim.dram_model import DECERR, OKAY, AxiDramModel, DramTiming

IDLE = {"arvalid": 0, "arid": 0, "araddr": 0, "arlen": 0, "arsize": 0, "rready": 1,
        "awvalid": 0, "awid": 0, "awaddr": 0, "awlen": 0, "awsize": 0,
        "wvalid": 0, "wdata": 0, "wstrb": 0, "wlast": 0, "bready": 1}


def step(model, **master):
    driven = model.outputs()
    model.clock({**IDLE, **master}, driven)
    return driven


@pytest.mark.parametrize("latency,bpc,interval", [(1, 16, 1), (5, 16, 1), (3, 4, 4), (2, 6, 3)])
def test_read_burst_timing_and_data(latency, bpc, interval):
    mem = np.arange(256, dtype=np.uint8)
    model = AxiDramModel(mem, bus_bytes=16, timing=DramTiming(latency, bpc))
    step(model, arvalid=1, arid=3, araddr=32, arlen=3, arsize=4)   # AR handshake at cycle 0
    beats = []
    for cycle in range(1, 40):
        out = step(model)
        if out["rvalid"]:
            beats.append((cycle, out["rdata"], out["rlast"], out["rid"], out["rresp"]))
    assert [b[0] for b in beats] == [latency + i * interval for i in range(4)]
    for i, (_, data, last, rid, resp) in enumerate(beats):
        assert data == int.from_bytes(mem[32 + 16 * i:48 + 16 * i].tobytes(), "little")
        assert (last, rid, resp) == (int(i == 3), 3, OKAY)


def test_write_burst_with_strobes_then_response():
    mem = np.zeros(64, np.uint8)
    model = AxiDramModel(mem, bus_bytes=4, timing=DramTiming(latency=2, bytes_per_cycle=4))
    step(model, awvalid=1, awid=1, awaddr=8, awlen=1, awsize=2)
    step(model, wvalid=1, wdata=0x44332211, wstrb=0b1111)
    step(model, wvalid=1, wdata=0x88776655, wstrb=0b0101, wlast=1)   # last beat at cycle 2
    assert step(model)["bvalid"] == 0                                   # cycle 3
    out = step(model)                                                   # cycle 4 = 2 + latency
    assert (out["bvalid"], out["bid"], out["bresp"]) == (1, 1, OKAY)
    assert list(mem[8:16]) == [0x11, 0x22, 0x33, 0x44, 0x55, 0, 0x77, 0]


def test_out_of_range_answers_decerr():
    model = AxiDramModel(np.zeros(64, np.uint8), bus_bytes=4, timing=DramTiming(latency=1))
    step(model, arvalid=1, araddr=64, arlen=0, arsize=2)
    out = step(model)
    assert (out["rvalid"], out["rresp"]) == (1, DECERR)


def test_backpressure_holds_the_beat():
    mem = np.arange(64, dtype=np.uint8)
    model = AxiDramModel(mem, bus_bytes=4, timing=DramTiming(latency=1))
    step(model, arvalid=1, araddr=0, arlen=1, arsize=2)
    first = step(model, rready=0)
    again = step(model, rready=1)
    assert first["rdata"] == again["rdata"] == 0x03020100
    assert step(model)["rdata"] == 0x07060504


@pytest.mark.parametrize("kwargs,match", [({"latency": 0}, "latency"),
                                          ({"bytes_per_cycle": 0}, "bytes_per_cycle"),
                                          ({"max_outstanding": 0}, "max_outstanding")])
def test_bad_timing_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DramTiming(**kwargs)
