"""The FPGA benchmark's rows, with the synthesis run replaced by fixed reports (the real one
takes an hour or more: `make bench ONLY=fpga`)."""

from bench.suites import fpga as suite
from hw.boards.boards import BOARDS
from hw.config import preset
from systolica.synth import Resource, SynthReport


def test_one_row_per_board_with_shares_and_no_fmax_when_it_does_not_fit(monkeypatch, tmp_path):
    def fake_run_synth(name, *, out_dir, seed):
        assert out_dir == tmp_path / name and seed == suite.SEED
        board = BOARDS[name]
        fits = name != "icebreaker-up5k"
        return SynthReport(
            board=name, part=board.part, config=preset(board.preset).to_dict(),
            resources={"LUT": Resource(900 if fits else 9000, 1000), "DSP": Resource(2, 8)},
            fmax_mhz=101.26, target_mhz=100.0, seconds={"yosys": 5.0, "total": 60.4},
            error="" if fits else "placement failed")

    monkeypatch.setattr(suite, "run_synth", fake_run_synth)
    monkeypatch.setattr(suite, "OUT_DIR", tmp_path)
    section = suite.fpga()
    rows = {row["board"]: row for row in section.rows}
    assert list(rows) == list(BOARDS)
    crab = rows["orangecrab-25f"]
    assert (crab["LUT"], crab["DSP"], crab["fmax_mhz"], crab["fits"], crab["seconds"]) == \
        ("900/1000 (90%)", "2/8 (25%)", 101.3, True, 60)
    assert crab["peak_gops"] == round(2 * 4 * 4 * 101.26 / 1000, 2)
    up5k = rows["icebreaker-up5k"]
    assert (up5k["fits"], up5k["fmax_mhz"], up5k["peak_gops"]) == (False, None, None)
