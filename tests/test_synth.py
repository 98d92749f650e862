"""The synthesis flow's report logic (systolica/synth.py) and the `systolica synth` command.
Synthesis itself takes minutes: it runs in `make synth`, not here."""

import fnmatch
import json
import re

import pytest

from hw.boards.boards import BOARDS, board
from hw.config import preset
from systolica.cli import main
from systolica.synth import CORE_MODULE, Resource, SynthError, SynthReport, markdown_table, \
    parse_nextpnr_report, parse_utilisation_log, write_reports, yosys_script

# The shape of nextpnr 0.11's --report JSON (values from an ECP5 run).
ECP5_REPORT = {
    "utilization": {
        "TRELLIS_COMB": {"available": 83640, "used": 20910},
        "TRELLIS_FF": {"available": 83640, "used": 8364},
        "MULT18X18D": {"available": 156, "used": 96},
        "DP16KD": {"available": 208, "used": 104},
        "TRELLIS_IO": {"available": 365, "used": 3},
    },
    "fmax": {"$glbnet$clk25_0__i": {"achieved": 103.5, "constraint": 100.0},
             "$glbnet$slow": {"achieved": 250.0, "constraint": 100.0}},
}


def test_parse_counts_each_resource_and_takes_the_slowest_clock():
    resources, fmax = parse_nextpnr_report(ECP5_REPORT, "ecp5")
    assert resources["LUT"] == Resource(20910, 83640)
    assert resources["DSP"].share == pytest.approx(96 / 156)
    assert resources["BRAM"] == Resource(104, 208)
    assert fmax == 103.5


def test_parse_ice40_reports_zero_for_unused_bels():
    report = {"utilization": {"ICESTORM_LC": {"available": 5280, "used": 6000}},
              "fmax": {"clk": {"achieved": 20.0, "constraint": 24.0}}}
    resources, fmax = parse_nextpnr_report(report, "ice40")
    assert resources["SPRAM"] == Resource(0, 0) and resources["SPRAM"].share == 0
    assert resources["LUT"].used > resources["LUT"].available and fmax == 20.0


@pytest.mark.parametrize("bad", [{}, {"utilization": {}, "fmax": {}}])
def test_parse_rejects_reports_without_timing(bad):
    with pytest.raises(SynthError, match="--report"):
        parse_nextpnr_report(bad, "ecp5")


def test_parse_rejects_unknown_family():
    with pytest.raises(ValueError, match="family must be one of"):
        parse_nextpnr_report(ECP5_REPORT, "xilinx")


# The utilisation table nextpnr-ecp5 prints before placement (from the 25F run that did not
# fit: `ERROR: Unable to place cell ..., no BELs remaining to implement cell type 'MULT18X18D'`).
ECP5_LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:       3/    197     1%
Info: \t              DP16KD:      63/     56   112%
Info: \t          MULT18X18D:      56/     28   200%
Info: \t          TRELLIS_FF:   10150/  24288    41%
Info: \t        TRELLIS_COMB:   17834/  24288    73%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'
"""


def test_utilisation_log_gives_what_a_design_that_does_not_fit_needs():
    resources = parse_utilisation_log(ECP5_LOG, "ecp5")
    assert resources["DSP"] == Resource(56, 28) and resources["BRAM"] == Resource(63, 56)
    assert resources["LUT"] == Resource(17834, 24288)
    with pytest.raises(SynthError, match="no device utilisation"):
        parse_utilisation_log("ERROR: bad json", "ecp5")


def test_report_files_give_fit_shares_and_peak_gops(tmp_path):
    resources, fmax = parse_nextpnr_report(ECP5_REPORT, "ecp5")
    report = SynthReport(board="ulx3s-85f", part="LFE5U-85F", config=preset("ulx3s-85f")
                         .to_dict(), resources=resources, fmax_mhz=fmax, target_mhz=100.0,
                         seconds={"total": 600.0})
    write_reports(report, tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["fits"] is True
    assert saved["peak_gops"] == pytest.approx(2 * 8 * 8 * 103.5 / 1000, abs=0.01)
    assert saved["resources"]["DSP"] == {"used": 96, "available": 156, "share": 0.6154}
    row = (tmp_path / "report.md").read_text().splitlines()[2]
    assert "| 8x8 |" in row and "96/156 (62%)" in row and "| 103.5 | 13.2 | yes |" in row
    over = SynthReport(**{**report.__dict__, "resources": {"DSP": Resource(200, 156)}})
    assert not over.fits and "| no |" in markdown_table([over])
    failed = SynthReport(**{**report.__dict__, "fmax_mhz": 0.0, "error": "ERROR: no BELs"})
    write_reports(failed, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert not failed.fits and "| - | - | no |" in text and "Does not fit: ERROR: no BELs" in text


def test_reports_name_the_commit_and_seed_they_ran_on(tmp_path):
    from systolica.provenance import provenance

    resources, fmax = parse_nextpnr_report(ECP5_REPORT, "ecp5")
    origin = provenance()
    assert set(origin) >= {"git_commit", "git_dirty", "date", "load_average"}
    report = SynthReport(board="ulx3s-85f", part="LFE5U-85F", config=preset("ulx3s-85f")
                         .to_dict(), resources=resources, fmax_mhz=fmax, target_mhz=100.0,
                         origin=origin, seed=3)
    write_reports(report, tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["origin"]["git_commit"] == origin["git_commit"] and saved["seed"] == 3
    assert f"Commit {origin['git_commit']}" in (tmp_path / "report.md").read_text()
    assert "placement seed 3" in (tmp_path / "report.md").read_text()


def test_every_board_has_its_preset():
    for name, b in BOARDS.items():
        assert preset(b.preset).name == name
    with pytest.raises(ValueError, match="unknown board 'nexys'"):
        board("nexys")


def test_cli_verilog_only_needs_an_output(capsys):
    assert main(["synth", "--board", "icebreaker-up5k", "--verilog-only"]) == 2
    assert "needs -o" in capsys.readouterr().err


def test_cli_verilog_only_writes_the_board_top(tmp_path):
    out = tmp_path / "board.v"
    assert main(["synth", "--board", "icebreaker-up5k", "--verilog-only", "-o", str(out)]) == 0
    assert "module board_top(" in out.read_text()


def test_only_boards_short_of_dsps_build_multipliers_in_luts():
    """The OrangeCrab's script turns its LUT multipliers into Booth multipliers before the
    hierarchy is flattened (while the module names select them); the other boards' do not."""
    script = yosys_script(board("orangecrab-25f")).split("; ")
    booth = next(cmd for cmd in script if cmd.startswith("booth "))
    assert script.index(booth) < script.index("flatten")
    assert f"{CORE_MODULE}.compute.core.array.pe_*/t:$mul" in booth.split()
    for name in ("ulx3s-85f", "icebreaker-up5k"):
        assert "booth" not in yosys_script(board(name))
        assert not getattr(board(name).make_platform(), "fabric_multipliers", False)


def test_orangecrab_lut_multipliers_select_modules_that_multiply():
    """Each selection of the OrangeCrab's `lut_multipliers` names modules of the elaborated
    board that hold `$mul` cells (a renamed module would otherwise silently go back to DSPs),
    the array's 16 PEs among them, and no MULT18X18D is instantiated."""
    from hw.boards.platform_top import PlatformTop

    b = board("orangecrab-25f")
    text = b.make_platform().prepare(PlatformTop(config=preset(b.preset)), name="top").files["top.il"]
    muls = {}
    for body in text.split("\nmodule ")[1:]:
        name = body.split("\n", 1)[0].strip().lstrip("\\")
        muls[name] = len(re.findall(r"cell \$mul ", body))
    assert "MULT18X18D" not in text
    for path in b.lut_multipliers:
        selected = fnmatch.filter(muls, f"{CORE_MODULE}.{path}")
        assert selected and all(muls[name] for name in selected), path
    pes = fnmatch.filter(muls, f"{CORE_MODULE}.compute.core.array.pe_*")
    assert len(pes) == 16
