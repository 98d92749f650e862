# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from hw.compute.tile_addresses import TileAddressGenerator
from hw.lint import lint_verilog, to_verilog
from tests.streams import collect, put, run_sim


def raster_addresses(base, h, w, groups):
    """Tile words in (y, x, group) order from the plane layout base + (g*h + y)*w + x."""
    return [base + (g * h + y) * w + x for y in range(h) for x in range(w) for g in range(groups)]


@pytest.mark.parametrize("base,h,w,groups,stalls", [
    (0, 1, 1, 1, 0.0), (5, 3, 4, 2, 0.0), (100, 7, 5, 3, 0.4), (0, 2, 16, 1, 0.0),
    (17, 4, 3, 5, 0.3),
])
def test_emits_raster_order_with_group_innermost(base, h, w, groups, stalls):
    dut = TileAddressGenerator()
    tiles = [(base, h, w, groups), (base + 3, w, h, 1)]
    got = []

    async def producer(ctx):
        for b, hh, ww, gg in tiles:
            await put(ctx, dut.cmd, {"base": b, "in_h": hh, "in_w": ww, "groups": gg})

    async def consumer(ctx):
        total = sum(hh * ww * gg for _, hh, ww, gg in tiles)
        got.extend(await collect(ctx, dut.o, total, stalls=stalls, seed=2,
                                 convert=lambda v: (v.addr, v.last)))

    run_sim(dut, producer, consumer)
    want = []
    for b, hh, ww, gg in tiles:
        addrs = raster_addresses(b, hh, ww, gg)
        want += [(a, int(i == len(addrs) - 1)) for i, a in enumerate(addrs)]
    assert got == want


def test_two_cycle_start_then_one_address_per_cycle():
    dut = TileAddressGenerator()
    h, w, groups = 3, 5, 2
    valid_cycles = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        await put(ctx, dut.cmd, {"base": 0, "in_h": h, "in_w": w, "groups": groups})
        for cycle in range(h * w * groups + 4):
            if ctx.get(dut.o.valid):
                valid_cycles.append(cycle)
            await ctx.tick()

    run_sim(dut, tb)
    # The command is accepted at edge 0; SIZE takes edge 1; addresses flow from then on.
    assert valid_cycles == list(range(1, 1 + h * w * groups))


def test_verilog_is_lint_clean():
    lint_verilog(to_verilog(TileAddressGenerator(), "tile_addresses"), "tile_addresses")


def test_raster_model_matches_plane_layout():
    rng = np.random.default_rng(0)
    h, w, g = 3, 4, 2
    planes = rng.integers(0, 100, (g, h, w))
    flat = planes.reshape(-1)
    order = [flat[a] for a in raster_addresses(0, h, w, g)]
    assert order == list(planes.transpose(1, 2, 0).reshape(-1))
