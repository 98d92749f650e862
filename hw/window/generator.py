"""Sliding-window generator: input tile rows into the line buffer, window chunks out.

One pass has the parameters of a CONV instruction (hw/isa.py `ConvLayout`; a POOL pass is one
per group plane with groups=1 and chunks [0, K*K)). For every output pixel (oy, ox) in raster
order it emits chunks k in [chunk_start, chunk_start + chunk_count) of the flattened window,
k = (ky*K + kx)*groups + group, each the input word at iy = oy*S - pad_top + ky,
ix = ox*S - pad_left + kx, or zero (`inside` = 0) when (iy, ix) lies outside the in_h x in_w
tile -- exactly sim/functional.py `window_addresses`.
"""

from __future__ import annotations

import dataclasses

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import isa
from hw.config import AcceleratorConfig

from .line_buffer import LineBuffer, default_row_slots

__all__ = ["WindowPass", "window_cmd_layout", "window_chunk_layout", "WindowGenerator"]

_CONV = data.Layout.cast(isa.ConvLayout)
_PASS_FIELDS = ("in_h", "in_w", "kernel", "stride", "pad_top", "pad_left", "out_h", "out_w",
                "chunk_start")


def _product(a: Value, b: Value) -> Value:
    """a * b as a sum of b shifted by the set bits of the narrow (3- or 4-bit) field a.
    Measured with Yosys synth_ecp5 on the default config: `*` everywhere used 7 of the 18x18
    multipliers (at most 156 on an ECP5, which the systolic array needs) and 993 LUT4; these
    shift-adds plus one multiplier for the 10 x 10-bit in_w * groups use 1 and 1574 LUT4
    (that product as shift-adds too would cost another 360 LUT4)."""
    terms = [Mux(a[bit], b << bit, 0) for bit in range(len(a))]
    return sum(terms[1:], terms[0])


def _next_slot(slot: Value, slots: int) -> Value:
    """The ring slot after `slot` in a ring of `slots`."""
    return Mux(slot == slots - 1, 0, slot + 1)


def _max_chunk_count(config: AcceleratorConfig) -> int:
    """A CONV pass uses at most `contexts` chunks, a POOL window has max_kernel**2 taps."""
    return max(config.contexts, config.max_kernel ** 2)


def window_cmd_layout(config: AcceleratorConfig) -> data.StructLayout:
    """Pass parameters; field widths are the CONV instruction's (chunk_count wide enough for a
    whole max_kernel x max_kernel pooling window)."""
    fields = {name: _CONV[name].shape for name in _PASS_FIELDS}
    fields["groups"] = _CONV["in_groups"].shape
    fields["chunk_count"] = unsigned(
        max(_CONV["chunk_count"].width, _max_chunk_count(config).bit_length()))
    return data.StructLayout(fields)


def window_chunk_layout(config: AcceleratorConfig) -> data.StructLayout:
    """One chunk: `data` (rows int8 lanes, lane 0 in the low byte), context index `d` =
    k - chunk_start, `inside`, `last` (final chunk of the pixel), `end` (final chunk of the
    pass)."""
    return data.StructLayout({
        "data": unsigned(8 * config.rows), "d": range(_max_chunk_count(config)),
        "inside": 1, "last": 1, "end": 1,
    })


@dataclasses.dataclass(frozen=True, kw_only=True)
class WindowPass:
    """The parameters of one pass, checked against a configuration by `check`."""
    in_h: int
    in_w: int
    groups: int
    kernel: int
    stride: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int
    chunk_start: int
    chunk_count: int

    @classmethod
    def of_conv(cls, instr: isa.Instruction) -> WindowPass:
        """The pass of a CONV instruction."""
        if instr.OPCODE is not isa.Opcode.CONV:
            raise ValueError(f"of_conv needs a CONV instruction, not {instr.OPCODE.name}")
        return cls(groups=instr.in_groups, chunk_count=instr.chunk_count,
                   **{name: getattr(instr, name) for name in _PASS_FIELDS})

    @classmethod
    def of_pool(cls, instr: isa.Instruction) -> WindowPass:
        """The pass of one group plane of a MAX or AVG POOL instruction: groups 1, every tap of
        the K x K window."""
        if instr.OPCODE is not isa.Opcode.POOL or instr.kind is isa.PoolKind.GLOBAL_AVG:
            raise ValueError("of_pool needs a MAX or AVG POOL instruction (GLOBAL_AVG has no "
                             f"window), not {instr.OPCODE.name} {getattr(instr, 'kind', '')}")
        return cls(groups=1, chunk_start=0, chunk_count=instr.kernel ** 2,
                   **{name: getattr(instr, name) for name in _PASS_FIELDS if name !=
                      "chunk_start"})

    def check(self, config: AcceleratorConfig) -> None:
        """Raise ValueError naming the first parameter this configuration cannot run."""
        layout = window_cmd_layout(config)
        for name, value in dataclasses.asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value < 1 << layout[name].width:
                raise ValueError(f"window pass {name} must be an integer from 0 to "
                                 f"{(1 << layout[name].width) - 1}, not {value!r}")
        for name in ("in_h", "in_w", "groups", "out_h", "out_w", "chunk_count"):
            if getattr(self, name) == 0:
                raise ValueError(f"window pass {name} must be at least 1, not 0")
        if not 1 <= self.kernel <= config.max_kernel:
            raise ValueError(f"window pass kernel must be from 1 to max_kernel "
                             f"({config.max_kernel}), not {self.kernel}")
        if not 1 <= self.stride <= config.max_stride:
            raise ValueError(f"window pass stride must be from 1 to max_stride "
                             f"({config.max_stride}), not {self.stride}")
        for name in ("pad_top", "pad_left"):
            if getattr(self, name) >= self.kernel:
                raise ValueError(f"window pass {name} must be from 0 to kernel - 1 "
                                 f"({self.kernel - 1}), not {getattr(self, name)}")
        if self.in_w * self.groups > config.line_buffer_words:
            raise ValueError(f"window pass row of in_w x groups = {self.in_w} x {self.groups} = "
                             f"{self.in_w * self.groups} words exceeds line_buffer_words "
                             f"({config.line_buffer_words})")
        window = self.kernel * self.kernel * self.groups
        if self.chunk_start + self.chunk_count > window:
            raise ValueError(f"window pass chunks [{self.chunk_start}, "
                             f"{self.chunk_start + self.chunk_count}) must lie in the {window} "
                             f"chunks of a {self.kernel}x{self.kernel}x{self.groups} window")
        if self.chunk_count > _max_chunk_count(config):
            raise ValueError(f"window pass chunk_count must be at most "
                             f"{_max_chunk_count(config)}, not {self.chunk_count}")

    @property
    def input_words(self) -> int:
        return self.in_h * self.in_w * self.groups

    @property
    def chunks(self) -> int:
        return self.out_h * self.out_w * self.chunk_count

    def cmd(self) -> dict[str, int]:
        """The payload of the generator's `cmd` stream."""
        return dataclasses.asdict(self)


class WindowGenerator(wiring.Component):
    """Line buffer plus window sequencer for one accelerator configuration.

    Ports:
      cmd (in, stream of `window_cmd_layout`): the parameters of the next pass; accepted once
        the previous pass has consumed all its input and the output side has started it (the
        next pass's input streams in while the previous pass still emits chunks), and not
        before `CMD_SETUP` = 3 edges after the first edge it is offered: the products of its
        fields and its checks are registered from the payload first (so the payload, and
        `valid` itself, must hold until the transfer, as the stream rules require: the
        transfer is formed from the settle registers).
      i (in, stream of unsigned(8*rows)): each pass's in_h*in_w*groups input words in raster
        order (y, x, group; group innermost), each exactly once, passes one after another.
      o (out, stream of `window_chunk_layout`): out_h*out_w*chunk_count chunks per pass, pixel
        by pixel in raster order, chunks in k order; `end` on the last chunk of a pass.
      error (out): high from the acceptance of a cmd this configuration cannot run until the
        next cmd is accepted.

    Parameters outside the configuration (kernel 0 or > max_kernel, stride 0 or > max_stride,
    a zero size or chunk_count, a pad >= kernel, in_w*groups > line_buffer_words, chunks beyond
    the window) are rejected by `isa.check` before they reach hardware; should one arrive
    anyway, the cmd is accepted, `error` rises and the pass is empty: no input is consumed and
    no chunk is emitted, so nothing hangs.

    The line buffer is a ring of `row_slots` rows (default max_kernel + max_stride); input rows
    take consecutive slots across passes. A row is written only into a slot whose old row the
    output no longer needs; output row oy starts once rows up to min(oy*S - pad_top + K, in_h)
    - 1 of its pass are complete (all K rows of the window, whatever the chunk range).

    Timing with no input gaps and no output backpressure (tests/hw/window/model.py
    `pass_edges` computes every edge from these rules), with edges numbered from 0:
      - the cmd of pass j+1 is accepted at the latest of: one edge after the last input word
        of pass j, one edge after the output side's load of pass j, and CMD_SETUP edges after
        the first edge it is offered; the output side loads pass j at the later
        of its cmd edge and one edge after the last chunk issue of pass j-1;
      - input words are accepted one per edge from the cmd edge + 1, except that input row r
        of pass j waits for room: while the output side is on row oy of pass j,
        r < max(oy*S - pad_top, 0) + row_slots; while it is still on row oy of pass j-1
        (it stays on the last row until it loads pass j),
        r + max(in_h[j-1] - max(oy*S - pad_top, 0), 0) < row_slots;
      - setup divides chunk_start by K*groups by repeated subtraction: the first chunk of a
        pass is issued no earlier than its load edge + 2 + chunk_start // (K*groups);
      - output row oy issues its out_w*chunk_count chunks one per edge from the later of the
        edge after the previous row's last issue and the edge after the last word of its last
        needed row; each chunk leaves on `o` `LATENCY` = 2 edges after its issue (the line
        buffer's two read stages, `LineBuffer.READ_LATENCY`).
    Throughput: one chunk per cycle while rows are present; one input word per cycle while
    there is room. With row_slots >= K + S the rows of the next output row stream in while a
    row is emitted, so a pass takes max(input words, chunks) cycles plus its first rows' fill,
    and the fill of pass j+1 hides behind the last rows of pass j. `cmd.ready`, `i.ready` and
    `o.valid` come from registers; `o.ready` reaches the line buffer's read enable and the
    issue counters combinationally (while stalled the line buffer holds the chunks of
    stages B and C in its read stages).
    """

    #: Clock edges from a chunk's issue to its transfer on `o` without backpressure.
    LATENCY = LineBuffer.READ_LATENCY
    #: A cmd is accepted no earlier than this many edges after the first edge it is offered.
    CMD_SETUP = 3

    def __init__(self, *, config: AcceleratorConfig, row_slots: int | None = None) -> None:
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if row_slots is None:
            row_slots = default_row_slots(config)
        least = max(config.max_kernel, config.max_stride)
        if isinstance(row_slots, bool) or not isinstance(row_slots, int) or row_slots < least:
            raise ValueError(f"row_slots must be an integer of at least max(max_kernel, "
                             f"max_stride) = {least}, not {row_slots!r}")
        self._config = config
        self._row_slots = row_slots
        super().__init__({
            "cmd": In(stream.Signature(window_cmd_layout(config))),
            "i": In(stream.Signature(unsigned(8 * config.rows))),
            "o": Out(stream.Signature(window_chunk_layout(config))),
            "error": Out(1),
        })

    @property
    def row_slots(self) -> int:
        return self._row_slots

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        slots = self._row_slots
        words = c.line_buffer_words
        m.submodules.line_buffer = lb = LineBuffer(config=c, row_slots=slots)

        cmd_layout = window_cmd_layout(c)
        most = {name: (1 << field.width) - 1 for name, field in cmd_layout}  # field maxima
        side, groups_max = most["in_h"], most["groups"]
        # Rows iy = oy*S - pad_top + ky lie within +-(1023*max_stride + max_kernel + 15);
        # columns ix*groups + group within that times groups.
        span = side * c.max_stride + c.max_kernel + most["pad_top"]
        row_shape = signed(span.bit_length() + 1)
        col_shape = signed((span * groups_max).bit_length() + 1)
        limit_shape = signed(row_shape.width + 1)
        p = self.cmd.payload

        # Products of the cmd's fields, formed once when it is accepted and kept with it.
        derived_layout = data.StructLayout({
            "kg": unsigned((most["kernel"] * groups_max).bit_length()),       # kernel * groups
            "row_words": unsigned((most["in_w"] * groups_max).bit_length()),  # in_w * groups
            "col_step": unsigned((most["stride"] * groups_max).bit_length()),  # stride * groups
            "col0": col_shape,                                               # -pad_left * groups
            "need0": row_shape,                                              # kernel - pad_top
            "need1": row_shape,                                              # need0 - 1
            "slots_less_h": limit_shape,                                     # slots - in_h
        })
        # The cmd's products and legality are registered from the payload while it is offered
        # (a stream's payload holds until its transfer): stage 1 the shift-add products, the
        # field checks and the operands of in_w * groups, stage 2 that product (a multiplier
        # with registered inputs: straight from the payload mux it was the 25F's critical
        # path, 10.3 ns, at 1df92a8) and the window size K * K * groups, stage 3 the checks
        # that use them.
        # Computed at acceptance, payload -> 10x10 multiplier -> compares -> acceptance ->
        # every load mux limited the ULX3S block to 54 MHz; the window product and its
        # compare in one stage were still 11 ns (91 MHz). The cmd is accepted once all three
        # stages hold the current payload's values (`CMD_SETUP`).
        derived = Signal(derived_layout)
        chunk_end = Signal(range(most["chunk_start"] + most["chunk_count"] + 1))
        taps = Signal(range(most["kernel"] * most["kernel"] * groups_max + 1))
        fields_legal, legal = Signal(), Signal()
        settled = [Signal(name=f"cmd_settled{n}") for n in (1, 2, 3)]  # stage n holds them
        in_w, groups = Signal.like(p.in_w), Signal.like(p.groups)
        m.d.sync += [
            in_w.eq(p.in_w), groups.eq(p.groups),
            derived.kg.eq(_product(p.kernel, p.groups)),
            derived.row_words.eq(in_w * groups),
            derived.col_step.eq(_product(p.stride, p.groups)),
            derived.col0.eq(-_product(p.pad_left, p.groups)),
            derived.need0.eq(p.kernel - p.pad_top),
            derived.need1.eq(p.kernel - p.pad_top - 1),
            derived.slots_less_h.eq(slots - p.in_h),
            chunk_end.eq(p.chunk_start + p.chunk_count),
            fields_legal.eq((p.kernel >= 1) & (p.kernel <= c.max_kernel)
                            & (p.stride >= 1) & (p.stride <= c.max_stride)
                            & (p.in_h != 0) & (p.in_w != 0) & (p.groups != 0)
                            & (p.out_h != 0) & (p.out_w != 0) & (p.chunk_count != 0)
                            & (p.chunk_count <= _max_chunk_count(c))
                            & (p.pad_top < p.kernel) & (p.pad_left < p.kernel)),
            taps.eq(_product(p.kernel, derived.kg)),
            legal.eq(fields_legal & (derived.row_words <= words) & (chunk_end <= taps)),
        ]

        # ---- input side: rows go to consecutive ring slots, across passes ---------------
        in_done = Signal(init=1)
        in_h = Signal(range(side + 1))
        in_row_words = Signal(range(words + 1))
        in_row = Signal(range(side + 1))
        in_col = Signal(range(words))
        # in_col == in_row_words - 1, registered with in_col: the compare sat in front of
        # `rows_short` (10 ns, 99.8 MHz on the ULX3S block).
        in_col_last = Signal()
        in_slot = Signal(range(slots))
        in_gen = Signal()   # toggles per pass; equal to out_gen when both sides share a pass

        # A cmd accepted while the output side is busy waits here with its first ring slot.
        pend_valid = Signal()
        pend = Signal(cmd_layout)
        pend_derived = Signal(derived_layout)
        pend_base = Signal(range(slots))

        m.d.comb += self.cmd.ready.eq(in_done & ~pend_valid & settled[2])
        # settled[2] means the cmd was offered and not taken in the cycle before, so by the
        # stream rules (valid holds until the transfer) it is still offered: the transfer
        # is formed from registers only, not from the producer's valid (the compute unit's
        # FSM decode, in front of the load muxes of ~100 registers).
        accept = Signal()
        m.d.comb += accept.eq(self.cmd.ready)
        offered = self.cmd.valid & ~accept
        m.d.sync += [settled[0].eq(offered), settled[1].eq(settled[0] & offered),
                     settled[2].eq(settled[1] & offered)]
        accept_legal = accept & legal
        with m.If(accept):
            m.d.sync += self.error.eq(~legal)
        with m.If(accept_legal):
            m.d.sync += [
                in_done.eq(0), in_h.eq(p.in_h), in_row_words.eq(derived.row_words),
                in_row.eq(0), in_col.eq(0), in_gen.eq(~in_gen),
                in_col_last.eq(derived.row_words == 1),
            ]

        # ---- output side state ------------------------------------------------------------
        out_done = Signal(init=1)
        out_gen = Signal()
        par = Signal(cmd_layout)
        kg = Signal(range(c.max_kernel * groups_max + 1))       # chunks per window row
        row_words = Signal(range(words + 1))                     # words per input row
        col_step = Signal(range(c.max_stride * groups_max + 1))  # stride * groups
        col0 = Signal(col_shape)
        # Setup: chunk_start = ky0 * kg + colk0 by repeated subtraction (ky0 <= max_kernel-1).
        setup = Signal()
        rem = Signal(cmd_layout["chunk_start"].shape)   # becomes colk0
        ky0 = Signal(range(c.max_kernel))
        iy_base = Signal(row_shape)       # oy*S - pad_top
        # The ring slot of row iy_base + ky0 (the pixel's first window row; counted up with
        # ky0 during setup) and of row iy_base + ky, the read slot: registers updated with ky,
        # so that the read address has no adder and wrap in front of it (ky -> slot_base + ky
        # -> wrap -> the block RAM address and yosys's read/write collision compare was 11 ns
        # on the ULX3S).
        slot0 = Signal(range(slots))
        r_slot = Signal(range(slots))
        col_base = Signal(col_shape)      # (ox*S - pad_left) * groups
        ox = Signal(range(side))
        oy = Signal(range(side))
        ky = Signal(range(c.max_kernel))
        colk = Signal(range(c.max_kernel * groups_max))  # kx*groups + group
        d = Signal(range(_max_chunk_count(c)))
        # Registered comparisons, updated with their counters so that no adder sits between
        # the counters and `issue` (it limited the default config to 66 MHz on an ECP5-85F):
        # the chunk is its pixel's last, the pixel its row's last, the row the pass's last.
        last, row_end, last_row = Signal(), Signal(), Signal()
        # ... and their products last & row_end, last & row_end & last_row (the chunk ends
        # its row, the pass), registered with them so that `issue` reaches the row and pass
        # updates through no further gate.
        row_last, pass_last = Signal(), Signal()
        # in_row - need, need = iy_base + K being the rows the current output row needs: the
        # output row may start when it is >= 0. Kept as a registered difference so that
        # `rows_ready` is one flip-flop instead of a compare of two counters (in_row ->
        # carry chain -> `issue` -> ~30 enables was the block's critical path, 93 MHz).
        rows_short = Signal(signed(row_shape.width + 2))
        one_less_stride = Signal(signed(row_shape.width))   # 1 - S, set at the load

        with m.If(setup):
            with m.If(rem >= kg):
                m.d.sync += [rem.eq(rem - kg), ky0.eq(ky0 + 1),
                             slot0.eq(_next_slot(slot0, slots))]
            with m.Else():
                m.d.sync += [setup.eq(0), ky.eq(ky0), colk.eq(rem), r_slot.eq(slot0)]

        # ---- input side handshake ---------------------------------------------------------
        # Writing ring slot in_slot overwrites the row row_slots rows back; it must not be one
        # the output still needs: rows from max(iy_base, 0) of the output's pass on, and, when
        # the input is a pass ahead, every row of its own pass.
        # With top = max(iy_base, 0): row r of the output's pass needs r < top + row_slots,
        # of the pass after it r < row_slots - max(in_h - top, 0). Both limits are registered
        # when iy_base changes, from `iy_ahead` = iy_base + S, so that only a compare sits
        # between the counters and `i.ready` (iy_base -> four carry chains -> `i.ready` limited
        # the ULX3S block to 78 MHz).
        same_pass = in_gen == out_gen
        limit_same, limit_next, slots_less_h = (Signal(limit_shape) for _ in range(3))
        iy_ahead = Signal(row_shape)
        # in_row < limit_same and in_row < limit_next as flip-flops, formed from the next
        # values of the three registers (below): the two carry-chain compares sat in front of
        # `i.ready` -> `row_done` -> `rows_short` (the 25F's critical path at d6b3d8e, seed 2).
        fits_same, fits_next = Signal(), Signal()
        room = Mux(same_pass, fits_same, fits_next)
        # Between the last issue of a pass and the load of a pending one (one cycle) the
        # output side still counts as on the old pass's last row.
        m.d.comb += self.i.ready.eq(~in_done & ((out_done & ~pend_valid) | room))
        m.d.comb += [
            lb.w_en.eq(self.i.valid & self.i.ready),
            lb.w_slot.eq(in_slot), lb.w_col.eq(in_col), lb.w_data.eq(self.i.payload),
        ]
        row_done = self.i.valid & self.i.ready & in_col_last
        with m.If(self.i.valid & self.i.ready):
            with m.If(in_col_last):
                m.d.sync += [
                    in_col.eq(0), in_row.eq(in_row + 1), in_col_last.eq(in_row_words == 1),
                    in_slot.eq(_next_slot(in_slot, slots)),
                ]
                with m.If(in_row == in_h - 1):
                    m.d.sync += in_done.eq(1)
            with m.Else():
                m.d.sync += [in_col.eq(in_col + 1), in_col_last.eq(in_col + 2 == in_row_words)]

        # ---- output side: stage A issues a read, stage B and C follow the line buffer's two
        # read stages, C holds the chunk on `o`. One enable for all stages: when `o` stalls
        # nothing moves (the line buffer holds both of its read stages).
        b_valid, c_valid = Signal(), Signal()
        b_d, c_d = Signal.like(d), Signal.like(d)
        b_inside, c_inside = Signal(), Signal()
        b_last, c_last = Signal(), Signal()
        b_end, c_end = Signal(), Signal()
        advance = ~c_valid | self.o.ready
        rows_ready = ~same_pass | in_done | ~rows_short[-1]
        issue = ~out_done & ~setup & rows_ready & advance

        iy = iy_base + ky
        col = col_base + colk
        inside = (iy >= 0) & (iy < par.in_h) & (col >= 0) & (col < row_words)
        end = pass_last
        m.d.comb += [
            lb.r_en.eq(advance),
            lb.r_slot.eq(r_slot),
            # Any column is a valid address with power-of-two rows (the low bits of an outside
            # column read some word that `inside` then zeroes); otherwise keep it in range.
            lb.r_col.eq(col if words & (words - 1) == 0 else Mux(inside, col, 0)),
        ]
        with m.If(advance):
            m.d.sync += [
                b_valid.eq(issue), b_d.eq(d), b_inside.eq(inside), b_last.eq(last),
                b_end.eq(end),
                c_valid.eq(b_valid), c_d.eq(b_d), c_inside.eq(b_inside), c_last.eq(b_last),
                c_end.eq(b_end),
            ]
        m.d.comb += [
            self.o.valid.eq(c_valid),
            self.o.payload.data.eq(Mux(c_inside, lb.r_data, 0)),
            self.o.payload.d.eq(c_d), self.o.payload.inside.eq(c_inside),
            self.o.payload.last.eq(c_last), self.o.payload.end.eq(c_end),
        ]

        top_ahead = Mux(iy_ahead > 0, iy_ahead, 0)
        with m.If(issue):
            with m.If(last):
                one_chunk = par.chunk_count == 1
                m.d.sync += [d.eq(0), last.eq(one_chunk), ky.eq(ky0), colk.eq(rem),
                             r_slot.eq(slot0)]
                with m.If(row_end):
                    next_slot = slot0 + par.stride
                    next_slot = Mux(next_slot >= slots, next_slot - slots, next_slot)
                    m.d.sync += [
                        ox.eq(0), row_end.eq(par.out_w == 1), col_base.eq(col0),
                        oy.eq(oy + 1), last_row.eq(oy + 2 == par.out_h),
                        row_last.eq(one_chunk & (par.out_w == 1)),
                        pass_last.eq(one_chunk & (par.out_w == 1) & (oy + 2 == par.out_h)),
                        iy_base.eq(iy_ahead), iy_ahead.eq(iy_ahead + par.stride),
                        slot0.eq(next_slot), r_slot.eq(next_slot),
                    ]
                with m.Else():
                    m.d.sync += [ox.eq(ox + 1), row_end.eq(ox + 2 == par.out_w),
                                 row_last.eq(one_chunk & (ox + 2 == par.out_w)),
                                 pass_last.eq(one_chunk & (ox + 2 == par.out_w) & last_row),
                                 col_base.eq(col_base + col_step)]
            with m.Else():
                m.d.sync += [d.eq(d + 1), last.eq(d + 2 == par.chunk_count),
                             row_last.eq((d + 2 == par.chunk_count) & row_end),
                             pass_last.eq((d + 2 == par.chunk_count) & row_end & last_row)]
                with m.If(colk == kg - 1):
                    m.d.sync += [colk.eq(0), ky.eq(ky + 1),
                                 r_slot.eq(_next_slot(r_slot, slots))]
                with m.Else():
                    m.d.sync += colk.eq(colk + 1)

        # ---- pass hand-over to the output side (never while issuing: it needs out_done) ---
        src = Signal(cmd_layout)
        src_derived = Signal(derived_layout)
        src_base = Signal(range(slots))
        with m.If(pend_valid):
            m.d.comb += [src.eq(pend), src_derived.eq(pend_derived), src_base.eq(pend_base)]
        with m.Else():
            m.d.comb += [src.eq(p), src_derived.eq(derived), src_base.eq(in_slot)]
        first_slot = src_base - src.pad_top
        load = [
            par.eq(src), out_done.eq(0), out_gen.eq(~out_gen),
            kg.eq(src_derived.kg), row_words.eq(src_derived.row_words),
            col_step.eq(src_derived.col_step), col0.eq(src_derived.col0),
            col_base.eq(src_derived.col0),
            setup.eq(1), rem.eq(src.chunk_start), ky0.eq(0),
            iy_base.eq(-src.pad_top), one_less_stride.eq(1 - src.stride),
            iy_ahead.eq(src.stride - src.pad_top),
            slots_less_h.eq(src_derived.slots_less_h),
            slot0.eq(Mux(first_slot < 0, first_slot + slots, first_slot)),
            ox.eq(0), oy.eq(0), d.eq(0), last.eq(src.chunk_count == 1),
            row_end.eq(src.out_w == 1), last_row.eq(src.out_h == 1),
            row_last.eq((src.chunk_count == 1) & (src.out_w == 1)),
            pass_last.eq((src.chunk_count == 1) & (src.out_w == 1) & (src.out_h == 1)),
        ]
        # rows_short follows in_row (+1 at a row's last word) and need (+S at a row's last
        # issue); every candidate is formed from registers, the late `row_done` and `issue`
        # only select. A load sets need = K - pad_top: with the input one pass ahead its rows
        # so far count (`pend`), a pass loaded at its cmd edge has none (in_row restarts).
        row_inc = Mux(row_done, rows_short + 1, rows_short)
        row_inc_less = Mux(row_done, rows_short + one_less_stride, rows_short - par.stride)
        m.d.sync += rows_short.eq(Mux(issue & row_last, row_inc_less, row_inc))
        pend_short = Mux(row_done, in_row - pend_derived.need1, in_row - pend_derived.need0)
        # A pass loads only once the output side is done, not at the edge of the last issue:
        # `issue` -> load muxes of ~25 registers was the block's critical path (77 MHz).
        with m.If(out_done & pend_valid):
            m.d.sync += load + [pend_valid.eq(0), rows_short.eq(pend_short)]
        with m.Elif(out_done & accept_legal):
            m.d.sync += load + [rows_short.eq(-derived.need0)]
        with m.Elif(accept_legal):
            m.d.sync += [pend.eq(p), pend_derived.eq(derived), pend_base.eq(in_slot),
                         pend_valid.eq(1)]
        with m.If(issue & end):
            m.d.sync += out_done.eq(1)
        # The limits' next values: a pass load resets them, an output row's last issue moves
        # them on (after the pass's last row they stay until the next load), else they hold.
        loads = out_done & (pend_valid | accept_legal)
        steps = issue & last & row_end & ~last_row
        limits = [
            (fits_same, limit_same, slots, top_ahead + slots),
            (fits_next, limit_next, src_derived.slots_less_h,
             Mux(par.in_h > top_ahead, slots_less_h + top_ahead, slots)),
        ]
        for fits, held, loaded, stepped in limits:
            m.d.sync += held.eq(Mux(loads, loaded, Mux(steps, stepped, held)))
            # in_row's next value is 0 (a pass accepted: never with row_done, which needs
            # ~in_done), in_row + 1 (row_done) or in_row. The compares are made against each
            # candidate limit from registers; the late `row_done`, `issue` and `accept`
            # only select among their results (the hand-over mux and `slots - in_h` in front
            # of the compare were the 25F's critical path at 01be5ec, 9.8 ns).
            compares = [Mux(accept_legal, 0 < limit,
                            Mux(row_done, in_row + 1 < limit, in_row < limit))
                        for limit in (held, loaded, stepped)]
            m.d.sync += fits.eq(Mux(loads, compares[1], Mux(steps, compares[2], compares[0])))
        return m
