"""bench/scalesim_io.py: SCALE-Sim's topology and report formats; bench/topologies.py shapes."""

import pytest

from bench.conv_layers import ConvShape
from bench.scalesim_io import config_text, parse_compute_report, topology_csv
from bench.topologies import SCALESIM_ALEXNET

REPORT = """LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,
0, 428778, 423797, 0, 97.15968253968254, 98.64130434782608, 97.5,
1, 1412345, 1380000, 0, 90.5, 99.0, 91.25,
"""


def test_padded_layer_is_written_with_its_padded_input():
    shape = ConvShape("c", 64, 56, 56, 3, 128, stride=1, pad=1)
    lines = topology_csv([shape]).splitlines()
    assert lines[0].startswith("Layer name, IFMAP Height")
    assert lines[1] == "c, 58, 58, 3, 3, 64, 128, 1,"
    assert (shape.out_height, shape.macs) == (56, 56 * 56 * 128 * 64 * 9)


def test_layer_names_that_scalesim_would_misread_are_refused():
    with pytest.raises(ValueError, match="'DP'"):
        topology_csv([ConvShape("DP1", 1, 4, 4, 1, 1)])


def test_config_is_weight_stationary_with_the_array_size():
    text = config_text(run_name="r", array=32)
    assert "ArrayHeight: 32\nArrayWidth: 32" in text and "Dataflow: ws" in text


def test_compute_report_parses():
    layers = parse_compute_report(REPORT)
    assert [layer.compute_cycles for layer in layers] == [423797, 1380000]
    assert layers[0].total_cycles_with_prefetch == 428778
    assert layers[1].overall_util_pct == 90.5 and layers[1].compute_util_pct == 91.25


def test_compute_report_with_another_header_is_refused():
    with pytest.raises(ValueError, match="COMPUTE_REPORT"):
        parse_compute_report("LayerID, Cycles,\n0, 5,\n")


def test_scalesim_alexnet_topology_matches_its_paper_shapes():
    out = [(s.out_height, s.out_channels) for s in SCALESIM_ALEXNET]
    assert out == [(54, 96), (23, 256), (11, 384), (11, 384), (11, 256)]
