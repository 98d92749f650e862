"""The boards Systolica builds for: platform, part, nextpnr arguments and config preset.

Each board's config preset (hw/config.py) is the largest array and buffers measured to fit
its part (docs/fpga.md has the measurements).
"""

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "board"]


@dataclass(frozen=True)
class Board:
    name: str
    family: str                   #: "ecp5" or "ice40": picks synth_<family> and nextpnr-<family>
    part: str
    preset: str                   #: the config preset in hw/config.py
    platform: Callable[[], object]
    nextpnr_args: tuple[str, ...]
    synth_args: tuple[str, ...] = ()
    #: Accelerator modules (paths under the board's core, Yosys patterns) whose multipliers
    #: are built in LUTs (Yosys `booth`) instead of DSPs: for a part with too few DSPs.
    lut_multipliers: tuple[str, ...] = ()

    def make_platform(self):
        """The board's amaranth-boards platform, ready to elaborate the accelerator for: with
        LUT multipliers it sets `fabric_multipliers`, so the PE and the element-wise unit
        leave their products to Yosys rather than instantiating MULT18X18D."""
        platform = self.platform()
        if self.lut_multipliers:
            platform.fabric_multipliers = True
        return platform


def _ulx3s_85f():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


def _orangecrab_25f():
    from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform

    from .platform_top import add_feather_uart
    platform = OrangeCrabR0_2_25FPlatform()
    add_feather_uart(platform)
    return platform


# The LFE5U-25F has 28 MULT18X18D; the 4x4 machine has 54 multipliers (docs/fpga.md). These
# go to LUTs: the array's 16 int8 x int8 products, the element-wise unit's 8 int8 x int16
# operand scalings and the compute unit's own address and size products; the checker's,
# pooling's, post-processing's, the store unit's, the tile and window generators' keep
# their DSPs (26-27 of 28; the LUTs are 95-97% used).
ORANGECRAB_LUT_MULTIPLIERS = ("compute.core.array.pe_*", "compute.eltwise", "compute")


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("ulx3s-85f", "ecp5", "LFE5U-85F-6BG381C", "ulx3s-85f", _ulx3s_85f,
          ("--85k", "--package", "CABGA381", "--speed", "6")),
    Board("orangecrab-25f", "ecp5", "LFE5U-25F-8MG285C", "orangecrab-25f", _orangecrab_25f,
          ("--25k", "--package", "CSFBGA285", "--speed", "8"),
          lut_multipliers=ORANGECRAB_LUT_MULTIPLIERS),
    # -spram: the 64 KiB DRAM stand-in goes to two of the four 32 KiB SPRAMs (30 EBRs hold
    # only 15 KiB).
    Board("icebreaker-up5k", "ice40", "iCE40UP5K-SG48", "icebreaker-up5k", _icebreaker,
          ("--up5k", "--package", "sg48"), ("-dsp", "-spram")),
)}


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; boards are {', '.join(BOARDS)}") from None
