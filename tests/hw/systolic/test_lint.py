"""Verilator -Wall lint of the systolic core's Verilog (and of its parts at odd sizes)."""

import pytest

from hw.config import preset
from hw.lint import lint_verilog, to_verilog
from hw.systolic import SystolicCore
from hw.systolic.array import SystolicArray


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_core_verilog_is_lint_clean(name):
    lint_verilog(to_verilog(SystolicCore(config=preset(name)), "systolic_core"), "systolic_core")


def test_non_square_array_with_one_context_is_lint_clean():
    lint_verilog(to_verilog(SystolicArray(rows=2, columns=3, contexts=1), "systolic_array"),
                 "systolic_array")
