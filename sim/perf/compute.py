"""The compute unit (hw/units/compute.py) at pass granularity.

Issue FSM: an instruction accepted in cycle A (IDLE; the 8-entry order FIFO has room, and a
change of mode waits for the done strobe of the last instruction) offers its block commands
from A + 2 (CONV: a cycle to read the parameter word), A + 4 (POOL: the writer command after
three size cycles, then the planes in turn) or A + 1 (ADD). Each command is held until its
block takes it; the issue FSM sees that from its `sent` registers, so the next step (the next
POOL plane, the ADD addresses, the next instruction's acceptance) comes two cycles after the
last command is taken.

When blocks take a command:
  tile address generator  one cycle after the previous tile's last address; first address
                          2 cycles later, then one per cycle (IBUF word on the reader's
                          output R = ComputeUnit.IBUF_READER.LATENCY = 2 cycles after its
                          address; stalled, the reader holds R words and takes no address)
  window generator        the previous pass's input is in and its output side has loaded it
                          (the output side loads a pass in the cycle after the previous
                          pass's last chunk issue), and WindowGenerator.CMD_SETUP cycles after
                          the command is first offered
  weight address gen.     when the previous load's last address leaves (its second-to-last
                          word enters the array)
  accumulator             the cycle after it took the previous pass's last pixel
  writer                  the cycle of the previous command's last write
  pooling unit            the cycle after the previous plane's end tap

CONV: IBUF word k enters the window generator at max(tile cmd + 2 + R, window cmd + 1) + k.
Output row oy issues its out_w * chunk_count chunks one per cycle from the later of the
previous row's end and the cycle after the last word of input row min(oy*S - pad_top + K,
in_h) - 1 (the first row: load + 2 + chunk_start // (K*groups)). Chunks are accepted by the
array WindowGenerator.LATENCY cycles after their issue (the line buffer's two read stages)
once their weight bank is loaded: the bank's chunk_count * columns words go in one per
cycle from max(weight cmd + 2, bank empty), the bank being empty
rows + columns cycles after the last (release) chunk of the pass before on it; a first chunk
that waits for weights counts as `weight_load` cycles. The last pixel leaves the array
rows + columns + 3 cycles after its last chunk and the accumulator takes it then; an
intermediate pass is done 3 cycles later, an output pass is admitted to post-processing the
next cycle, written PostProcess.LATENCY cycles later, and done 2 cycles after that.
POOL: per channel-block plane, tile/window/pooling commands; the pooling unit takes taps one
per cycle (window passes as for CONV with groups 1 and K*K chunks; global: in_h*in_w words
straight from the reader; a window pass's taps reach it WindowGenerator.LATENCY cycles
after their issue) and its result is written PoolingUnit.LATENCY cycles after the end tap;
done 2 cycles after the last write. ADD: operand pairs b_k enter the element-wise unit at
sent + 2 + R + 2k; the result is written EltwiseAdd.LATENCY cycles later; done 2 cycles after.

LUT writes: while a LUT load's words go into the activation tables (word_bytes cycles after
each word), post-processing and the element-wise unit admit nothing. ADD pairs then wait
(exact). For CONV output passes the model follows each pixel: valid at the array output at
N_i (plus the array stall so far), taken by the accumulator when its stage is free, admitted
outside holds; a pixel finding the output register full waits in the skid slot and stops the
array until the register empties. Instructions already modelled when a LUT load's timing
becomes known are re-run with the holds.
"""

from __future__ import annotations

import bisect

from hw.config import AcceleratorConfig
from hw.eltwise import EltwiseAdd
from hw.isa import Opcode, PoolKind
from hw.pooling import PoolingUnit
from hw.postprocess import PostProcess
from hw.units.compute import ComputeUnit
from hw.window.generator import WindowGenerator
from hw.window.line_buffer import default_row_slots

__all__ = ["ComputeModel"]

NEVER = -(10 ** 9)


class ComputeModel:
    """The compute unit's state between instructions: when each block takes its next
    command, the weight banks, the counters, and the LUT-write holds seen so far."""

    def __init__(self, config: AcceleratorConfig) -> None:
        self.c = config
        self.core_latency = config.rows + config.columns + 3
        self.drain = config.rows + config.columns
        self.slots = default_row_slots(config)
        self.prev_pass: tuple[list, int] = ([], 0)   # output phases and in_h of the last pass
        self.post_latency = PostProcess.LATENCY
        self.add_latency = EltwiseAdd.LATENCY
        self.window_latency = WindowGenerator.LATENCY   # chunk issue -> taken downstream
        self.window_setup = WindowGenerator.CMD_SETUP   # cmd offered -> earliest acceptance
        self.pool_latency = PoolingUnit.LATENCY         # end tap -> written
        self.read_latency = ComputeUnit.IBUF_READER.LATENCY   # IBUF address -> word
        # a tile / ADD command taken at cycle t -> its first IBUF word out of the reader
        self.first_word = 2 + self.read_latency
        self.ready = 0               # next IDLE acceptance
        self.mode = None
        self.tiles_free = 0
        self.window_free = 0         # window cmd can be taken
        self.window_out_free = 0     # output side loads the next pass (last issue + 1)
        self.wload_free = 0
        self.acc_free = 0
        self.writer_free = 0
        self.pool_free = 0
        self.bank = 0
        self.bank_empty = [0, 0]
        self.array_busy = 0
        self.weight_load = 0
        self.holds: list[tuple[int, int]] = []    # LUT-write cycles [first, last]
        self.history: list = []                   # (instr, accepted, index, state before)

    _STATE_SKIP = ("history", "holds", "c")

    def _snapshot(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k not in self._STATE_SKIP}

    def lut_holds(self, taken: list[int]) -> dict[int, int]:
        """A LUT load's words were taken at `taken`: post-processing and the element-wise unit
        admit nothing in the word_bytes cycles after each. Re-runs the instructions still in
        flight then; returns their new done cycles by instruction index."""
        wb = self.c.word_bytes
        windows = [(t + 1, t + wb) for t in taken]
        first = windows[0][0]
        self.holds.extend(windows)
        redo = [h for h in self.history if h[4] >= first]
        if not redo:
            return {}
        start = self.history.index(redo[0])
        entries = self.history[start:]
        del self.history[start:]
        self.__dict__.update(entries[0][3])
        self.bank_empty = list(self.bank_empty)
        return {index: self.run(instr, a, index) for instr, a, index, _, _ in entries}

    def _free(self, t: int) -> int:
        """The first cycle >= t outside every LUT-write hold."""
        i = bisect.bisect_right(self.holds, (t, NEVER * -1)) - 1
        if i >= 0 and self.holds[i][0] <= t <= self.holds[i][1]:
            return self.holds[i][1] + 1
        return t

    def accept_time(self, instr, earliest: int, done_times: list[int]) -> int:
        """First cycle >= earliest at which IDLE accepts `instr`; `done_times` are the done
        strobes of the compute instructions before it (for the mode change and the 8-entry
        order FIFO)."""
        t = max(earliest, self.ready)
        if len(done_times) >= 8:
            t = max(t, done_times[-8] + 1)
        mode = self._mode(instr)
        if self.mode is not None and mode != self.mode and done_times:
            t = max(t, done_times[-1])
        return t

    @staticmethod
    def _mode(instr):
        if instr.OPCODE is Opcode.POOL:
            return "global" if instr.kind is PoolKind.GLOBAL_AVG else "window"
        return instr.OPCODE.name

    def run(self, instr, a: int, index: int = -1) -> int:
        """Execute `instr` accepted at cycle `a`; returns its done strobe cycle."""
        before = self._snapshot()
        done = self._run(instr, a)
        self.history.append((instr, a, index, before, done))
        if len(self.history) > 16:
            del self.history[:-16]
        return done

    def _run(self, instr, a: int) -> int:
        self.mode = self._mode(instr)
        op = instr.OPCODE
        if op is Opcode.CONV:
            done = self._conv(instr, a)
        elif op is Opcode.POOL:
            done = self._pool(instr, a)
        else:
            done = self._add(instr, a)
        return done

    # ---- window generator pass ---------------------------------------------------------
    def _window_pass(self, p, tile_cmd: int, window_cmd: int, gate: int) -> tuple[int, int]:
        """Issue cycles (first, last) of a window pass; `gate`: the earliest cycle the first
        chunk may be accepted downstream (issue <= gate - window_latency). Input row r
        streams its words one per cycle once the line buffer has room for it: while the
        output side is on row oy of the previous pass (on its last row until this pass
        loads), r + max(prev in_h - top(oy), 0) < row_slots; while it is on row oy of this
        pass, r - top(oy) < row_slots (top(oy) = max(oy*S - pad_top, 0); the output side is
        on row oy from the cycle after row oy-1's last issue)."""
        kernel, stride, pad = p["kernel"], p["stride"], p["pad_top"]
        in_h, row_words = p["in_h"], p["in_w"] * p["groups"]
        slots = self.slots
        in_start = max(tile_cmd + self.first_word, window_cmd + 1)
        load = max(window_cmd, self.window_out_free)
        prev_phases, prev_h = self.prev_pass
        phases: list[tuple[int, int]] = []      # (first cycle on row oy, top(oy)) this pass
        row_end: list[int] = []

        def room(r: int) -> int:
            for start, top in prev_phases:
                if r + max(prev_h - top, 0) < slots:
                    return start
            for start, top in phases:
                if r - top < slots:
                    return start
            raise AssertionError("row_slots >= kernel + stride always leaves room")

        def input_rows(upto: int) -> None:
            while len(row_end) <= upto:
                r = len(row_end)
                begin = max(row_end[-1] + 1 if row_end else in_start, room(r))
                row_end.append(begin + row_words - 1)

        first = load + 2 + p["chunk_start"] // (kernel * p["groups"])
        first = max(first, gate - self.window_latency)
        per_row = p["out_w"] * p["chunk_count"]
        t = first
        rows = self.row_starts = []
        for oy in range(p["out_h"]):
            phases.append((load + 1 if oy == 0 else t, max(oy * stride - pad, 0)))
            need = min(oy * stride - pad + kernel, in_h) - 1
            if need >= 0:
                input_rows(need)
                t = max(t, row_end[need] + 1)
            rows.append(t)
            t += per_row
        last_issue = t - 1
        # the rest of the input streams in after the output side has finished the pass
        phases.append((last_issue + 1, in_h))
        input_rows(in_h - 1)
        phases.pop()
        last_in = row_end[-1]
        self.tiles_free = last_in + 1 - self.read_latency   # last address taken + 1
        self.window_out_free = last_issue + 1
        self.window_free = max(last_in + 1, load + 1)
        self.prev_pass = (phases, in_h)
        return rows[0], last_issue

    def _conv(self, x, a: int) -> int:
        c = self.c
        t = a + 2
        tiles = max(t, self.tiles_free)
        window = max(t + self.window_setup, self.window_free)
        wload = max(t, self.wload_free)
        acc = max(t, self.acc_free)
        sent = max(tiles, window, wload, acc)
        if x.output:
            sent = max(sent, self.writer_free)
        self.ready = sent + 2
        bank = self.bank
        self.bank ^= 1
        words = x.chunk_count * c.columns
        w_first = max(wload + 2, self.bank_empty[bank])
        w_last = w_first + words - 1
        self.wload_free = w_last - 1
        p = dict(kernel=x.kernel, stride=x.stride, pad_top=x.pad_top, in_h=x.in_h, in_w=x.in_w,
                 groups=x.in_groups, out_w=x.out_w, out_h=x.out_h, chunk_start=x.chunk_start,
                 chunk_count=x.chunk_count)
        saved = (self.tiles_free, self.window_free, self.window_out_free, self.prev_pass)
        nominal_first, _ = self._window_pass(p, tiles, window, 0)
        self.tiles_free, self.window_free, self.window_out_free, self.prev_pass = saved
        first, last = self._window_pass(p, tiles, window, w_last + 1)
        self.weight_load += max(0, first - nominal_first)
        chunks = x.out_h * x.out_w * x.chunk_count
        self.array_busy += chunks
        c_last = last + self.window_latency
        acc_last = c_last + self.core_latency
        admitted = acc_last + 1
        if x.output and self.holds and self.holds[-1][1] >= first + self.core_latency:
            stall, acc_last, admitted = self._post_holds(self.row_starts, x.out_w,
                                                         x.chunk_count)
            c_last += stall
            self.window_out_free += stall     # the generator's output waited as long
        self.bank_empty[bank] = c_last + self.drain
        self.acc_free = acc_last + 1
        if x.output:
            write_last = admitted + self.post_latency
            self.writer_free = write_last
            return write_last + 2
        return acc_last + 3

    def _post_holds(self, rows: list[int], out_w: int, cc: int) -> tuple[int, int, int]:
        """A pass's pixels through post-processing with LUT-write holds: (cycles the array
        stalled, cycle the accumulator took the last pixel, cycle post-processing admitted
        it); the stalled cycles in which a chunk of the pass waits count as `weight_load`
        (the array-stall event). Pixel i is valid at the core output at N_i (its last
        chunk's acceptance + core latency) unless the output register is still full (then it
        waits in the skid slot and the array stops until the register is taken); the
        accumulator takes it when its stage is free and post-processing admits it the cycle
        after, outside LUT-write holds."""
        lat = self.core_latency
        stall = waiting = 0
        x_prev = a_prev = NEVER
        last_chunk = rows[-1] + out_w * cc - 1 + self.window_latency  # accepted, no stall
        for r in rows:
            for ox in range(out_w):
                n_i = r + (ox + 1) * cc - 1 + self.window_latency + lat + stall
                if x_prev >= n_i:
                    # stopped from n_i to x_prev; a chunk waits while the pass has chunks left
                    waiting += max(0, min(x_prev, last_chunk + stall - 1) - n_i + 1)
                    stall += x_prev + 1 - n_i
                    o_i = x_prev + 1
                else:
                    o_i = n_i
                x_prev = max(o_i, a_prev)
                a_prev = self._free(x_prev + 1)
        self.weight_load += waiting
        return stall, x_prev, a_prev

    def _pool(self, x, a: int) -> int:
        writer = max(a + 4, self.writer_free)
        pt = writer + 2
        last_out = NEVER
        if x.kind is PoolKind.GLOBAL_AVG:
            words = x.in_h * x.in_w
            for _ in range(x.groups):
                tiles = max(pt, self.tiles_free)
                pool = max(pt, self.pool_free)
                first_in = max(tiles + self.first_word, pool + 1)
                end_tap = first_in + words - 1
                self.tiles_free = end_tap + 1 - self.read_latency
                self.pool_free = end_tap + 1
                last_out = end_tap + self.pool_latency
                pt = max(tiles, pool) + 2
        else:
            p = dict(kernel=x.kernel, stride=x.stride, pad_top=x.pad_top, in_h=x.in_h,
                     in_w=x.in_w, groups=1, out_w=x.out_w, out_h=x.out_h, chunk_start=0,
                     chunk_count=x.kernel * x.kernel)
            for _ in range(x.groups):
                tiles = max(pt, self.tiles_free)
                window = max(pt + self.window_setup, self.window_free)
                pool = max(pt, self.pool_free)
                _, last = self._window_pass(p, tiles, window, pool + 1)
                end_tap = last + self.window_latency
                self.pool_free = end_tap + 1
                last_out = end_tap + self.pool_latency
                pt = max(tiles, window, pool) + 2
        self.ready = pt
        self.writer_free = last_out
        return last_out + 2

    def _add(self, x, a: int) -> int:
        t = a + 1
        # both commands taken at max(t, writer_free); the addresses start one cycle later
        # than the last acceptance would allow (the FSM reads its `sent` registers)
        sent = max(t, self.writer_free) + 1
        # addresses a_0, b_0, a_1, ... one per cycle from sent + 1; IDLE after the last
        self.ready = sent + 2 + 2 * x.count - 1
        first_pair = sent + 1 + self.read_latency
        last_b = first_pair + 2 * x.count - 1
        if self.holds and self.holds[-1][1] >= sent:
            # pair k enters the element-wise unit two cycles after pair k-1, outside holds
            b = prev = NEVER
            for k in range(x.count):
                prev = b
                b = self._free(sent + self.first_word if k == 0 else b + 2)
            last_b = b
            # The reader takes the last b address when the word read_latency places before
            # it leaves: a_(n-1) at prev + 1 (latency 1), b_(n-2) at prev (latency 2).
            self.ready = (prev + 3 - self.read_latency) if x.count > 1 else sent + 3
        last_out = last_b + self.add_latency
        self.writer_free = last_out
        return last_out + 2
