"""The netlist path estimate (systolica/netlist_depth.py) on small hand-made netlists."""

import json

import pytest

from systolica.netlist_depth import Delays, endpoints, main

D = Delays()


def _cell(kind, inputs, outputs, **parameters):
    connections = {**inputs, **outputs}
    return {"type": kind, "parameters": parameters, "connections": connections,
            "port_directions": {**{p: "input" for p in inputs},
                                **{p: "output" for p in outputs}}}


def _netlist(cells, names):
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "cells": cells,
                                "netnames": {n: {"bits": [b]} for n, b in names.items()}}}}


def _ff(d, q):
    return _cell("TRELLIS_FF", {"CLK": [1], "DI": [d]}, {"Q": [q]})


def test_two_luts_between_registers_and_a_direct_path():
    # a -> LUT -> x -> LUT -> y -> FF;  a -> FF (direct); net a has three loads
    cells = {"fa": _ff(9, 10), "l1": _cell("LUT4", {"A": [10]}, {"Z": [11]}),
             "l2": _cell("LUT4", {"B": [11]}, {"Z": [12]}),
             "fy": _ff(12, 13), "fd": _ff(10, 14)}
    found = endpoints(_netlist(cells, {"a": 10, "x": 11, "y": 12, "q": 13, "d": 14}))
    worst = found[0]
    assert (worst.cell, worst.port, worst.path, worst.levels) == ("fy", "DI", ("y", "x", "a"), 2)
    fanout_a = D.hop + D.fanout_step * 1          # two loads: l1 and fd
    assert worst.ns == pytest.approx(
        D.clk_to_q + fanout_a + D.lut + D.hop + D.lut + D.hop + D.setup, abs=0.01)
    direct = next(e for e in found if e.cell == "fd")
    assert direct.levels == 0 and direct.ns == pytest.approx(D.clk_to_q + fanout_a + D.setup,
                                                             abs=0.01)


def test_carry_chain_and_block_ram_start():
    # DP16KD DO -> CCU2C A0 -> COUT -> CCU2C CIN -> S0 -> FF
    cells = {"ram": _cell("DP16KD", {"CLKA": [1]}, {"DOA0": [20]}),
             "c0": _cell("CCU2C", {"A0": [20]}, {"COUT": [21], "S0": [22]}),
             "c1": _cell("CCU2C", {"CIN": [21]}, {"S0": [23]}),
             "f": _ff(23, 24)}
    found = endpoints(_netlist(cells, {"ram_do": 20, "carry": 21, "s": 23}))
    e = next(e for e in found if e.cell == "f")
    assert e.path == ("s", "carry", "ram_do")
    assert e.ns == pytest.approx(D.bram_clk_to_out + D.hop + D.carry_in + D.carry_sum + D.hop
                                 + D.setup, abs=0.01)


def test_registered_multiplier_starts_and_ends_paths():
    cells = {"fa": _ff(9, 30),
             "m": _cell("MULT18X18D", {"A": [30], "B": [30]}, {"P0": [31]},
                        REG_INPUTA_CLK="CLK0", REG_OUTPUT_CLK="CLK0"),
             "f": _ff(31, 32)}
    found = {(e.cell, e.port): e for e in endpoints(_netlist(cells, {"a": 30, "p": 31}))}
    assert found[("m", "A")].levels == 0
    assert found[("f", "DI")].ns == pytest.approx(D.dsp_clk_to_out + D.hop + D.setup, abs=0.01)


def test_command_line(tmp_path, capsys):
    cells = {"fa": _ff(9, 10), "l1": _cell("LUT4", {"A": [10]}, {"Z": [11]}),
             "fy": _ff(11, 12)}
    path = tmp_path / "top.json"
    path.write_text(json.dumps(_netlist(cells, {"board.top.a": 10, "board.top.y": 11})))
    assert main([str(path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 levels  a  ->  y  (TRELLIS_FF.DI)" in out
    assert main([str(path), "--top", "1", "--chain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.strip() for line in lines[-2:]] == ["a", "y"]


def test_command_line_rejects_what_is_not_a_netlist(tmp_path):
    path = tmp_path / "top.json"
    path.write_text("{\"modules\": {\"a\": {}, \"b\": {}}}")
    with pytest.raises(SystemExit) as exit_info:
        main([str(path)])
    assert exit_info.value.code == 2
