"""The Systolica instruction set: one source of truth for the compiler, the RTL and the simulators.

Every instruction is one 256-bit little-endian word. The low 8 bits are a common header
(opcode and four dependency-token flags); the rest is the opcode's `data.Struct` layout; every
bit above the layout is reserved and must be zero. The RTL decodes a fetched word by viewing it
through these layouts; the compiler builds instructions as the Python records below and
`encode`s them; `decode` turns a word back into a record and raises `IllegalInstruction` naming
the field when the word is not a legal instruction. `check` adds the limits that depend on the
accelerator configuration and returns the `ErrorCode` the hardware reports for them.

The semantics of each instruction are written down in docs/isa.md and executed by
sim/functional.py.
"""



import dataclasses
from typing import Any, ClassVar

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from .config import AcceleratorConfig

__all__ = [
    "INSTR_BITS", "INSTR_BYTES", "Opcode", "Queue", "Buffer", "Activation", "PoolKind",
    "ErrorCode", "Header", "LoadStoreLayout", "ConvLayout", "PoolLayout", "AddLayout",
    "EndLayout", "LAYOUTS", "Instruction", "Load", "Store", "Conv", "Pool", "Add", "End",
    "IllegalInstruction", "encode", "decode", "encode_program", "decode_program", "check",
    "queue_of",
]

INSTR_BITS = 256
INSTR_BYTES = INSTR_BITS // 8


class Opcode(enum.Enum, shape=4):
    END = 0     #: wait for every queue to drain, then stop with done
    LOAD = 1    #: DMA: DRAM -> on-chip buffer (load queue)
    STORE = 2   #: DMA: output buffer -> DRAM (store queue)
    CONV = 3    #: one convolution / matrix pass on the systolic array (compute queue)
    POOL = 4    #: max / average / global-average pooling pass (compute queue)
    ADD = 5     #: element-wise add of two rescaled int8 tensors (compute queue)


class Queue(enum.Enum, shape=2):
    """The three instruction queues. Tokens flow between neighbours: LOAD <-> COMPUTE <-> STORE."""
    LOAD = 0
    COMPUTE = 1
    STORE = 2


class Buffer(enum.Enum, shape=3):
    """On-chip memories a DMA instruction can name."""
    IBUF = 0  #: input activations, word = `rows` int8 (one channel block of one pixel)
    WBUF = 1  #: weights, word = `rows` int8 (one context of one column)
    PBUF = 2  #: post-processing parameters, word = `columns` x (int32 bias, int16 mult, u8 shift)
    LUT = 3   #: 256-entry int8 activation table, word = `rows` int8
    OBUF = 4  #: output activations, word = `columns` int8


class Activation(enum.Enum, shape=2):
    NONE = 0
    RELU = 1
    LUT = 2   #: y = lut[y + 128]: any element-wise int8 -> int8 function


class PoolKind(enum.Enum, shape=2):
    MAX = 0
    AVG = 1
    GLOBAL_AVG = 2  #: window = the whole input tile, output 1 x 1


class ErrorCode(enum.Enum, shape=4):
    """What the status register reports when the machine stops on a bad instruction."""
    NONE = 0
    ILLEGAL_OPCODE = 1   #: the opcode field names no instruction
    ILLEGAL_FIELD = 2    #: a field (or reserved bits) outside what the instruction allows
    BUFFER_RANGE = 3     #: an access beyond the end of an on-chip buffer
    DRAM_RANGE = 4       #: a DMA or fetch address beyond the configured DRAM size
    MISALIGNED = 5       #: a DRAM address or stride that is not a multiple of the word size
    TOKEN_OVERFLOW = 6   #: more unconsumed dependency tokens than the token queue holds
    DEADLOCK = 7         #: every queue waits for a token that no runnable instruction pushes
    BUS_ERROR = 8        #: the AXI slave answered SLVERR or DECERR (hardware only)


def queue_of(opcode: Opcode) -> Queue | None:
    """The queue an opcode executes in (None for END, which waits for all three)."""
    return {Opcode.LOAD: Queue.LOAD, Opcode.STORE: Queue.STORE, Opcode.CONV: Queue.COMPUTE,
            Opcode.POOL: Queue.COMPUTE, Opcode.ADD: Queue.COMPUTE}.get(opcode)


# ---- layouts --------------------------------------------------------------------------------

class Header(data.Struct):
    """Common to every instruction. `prev`/`next` are the neighbouring queues in
    LOAD -> COMPUTE -> STORE order; pops happen before the instruction runs, pushes after."""
    opcode: Opcode
    pop_prev: 1
    pop_next: 1
    push_prev: 1
    push_next: 1


class LoadStoreLayout(data.Struct):
    """3-D strided DMA. The buffer side is dense; the DRAM side is
    `dram_addr + i2*stride2 + i1*stride1 + i0*word_bytes` for i0 < size0, i1 < count1,
    i2 < count2, and buffer word `buf_addr + (i2*count1 + i1)*size0 + i0`."""
    header: Header
    buffer: Buffer
    buf_addr: 16
    dram_addr: 32
    size0: 16
    count1: 16
    stride1: 32
    count2: 16
    stride2: 32


class ConvLayout(data.Struct):
    """One pass of the systolic array over an input tile (see docs/isa.md)."""
    header: Header
    accumulate: 1      #: add the pass to the accumulator buffer's contents instead of zero
    output: 1          #: post-process to the output buffer (else write the accumulator buffer)
    activation: Activation
    ibuf_addr: 16
    in_h: 10
    in_w: 10
    in_groups: 10      #: channel blocks of `rows` channels in the input tile
    kernel: 4
    stride: 3
    pad_top: 4
    pad_left: 4
    out_h: 10
    out_w: 10
    chunk_start: 20    #: first chunk of the flattened (ky, kx, group) window in this pass
    chunk_count: 7     #: chunks in this pass = weight contexts used
    wbuf_addr: 16
    acc_addr: 16
    obuf_addr: 16
    pbuf_addr: 16


class PoolLayout(data.Struct):
    header: Header
    kind: PoolKind
    ibuf_addr: 16
    in_h: 10
    in_w: 10
    groups: 10
    kernel: 4
    stride: 3
    pad_top: 4
    pad_left: 4
    out_h: 10
    out_w: 10
    obuf_addr: 16
    mult: signed(16)
    shift: 6


class AddLayout(data.Struct):
    header: Header
    activation: Activation
    a_addr: 16
    b_addr: 16
    count: 16
    obuf_addr: 16
    mult_a: signed(16)
    mult_b: signed(16)
    shift: 6


class EndLayout(data.Struct):
    header: Header


LAYOUTS: dict[Opcode, type[data.Struct]] = {
    Opcode.END: EndLayout, Opcode.LOAD: LoadStoreLayout, Opcode.STORE: LoadStoreLayout,
    Opcode.CONV: ConvLayout, Opcode.POOL: PoolLayout, Opcode.ADD: AddLayout,
}

for _opcode, _layout in LAYOUTS.items():
    assert data.Layout.cast(_layout).size <= INSTR_BITS, (_opcode, _layout)


def _leaf_fields(layout: data.Layout, prefix: str = "", base: int = 0):
    """(dotted name, shape, bit offset, width) of every leaf field, header first."""
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, type) and issubclass(shape, data.Struct):
            yield from _leaf_fields(data.Layout.cast(shape), f"{prefix}{name}.", base + field.offset)
        else:
            yield f"{prefix}{name}", shape, base + field.offset, field.width


_FIELDS: dict[Opcode, list[tuple[str, Any, int, int]]] = {
    op: list(_leaf_fields(data.Layout.cast(layout))) for op, layout in LAYOUTS.items()
}
_HEADER_FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")


# ---- Python records -------------------------------------------------------------------------

class IllegalInstruction(ValueError):
    """A word or record that is not a legal instruction; `field` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None,
                 code: ErrorCode = ErrorCode.ILLEGAL_FIELD) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclasses.dataclass(frozen=True, kw_only=True)
class Instruction:
    """Base of the instruction records: the four dependency-token flags."""
    OPCODE: ClassVar[Opcode]
    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False

    @property
    def opcode(self) -> Opcode:
        return self.OPCODE

    @property
    def queue(self) -> Queue | None:
        return queue_of(self.OPCODE)

    def __post_init__(self) -> None:
        for name, shape, _, width in _FIELDS[self.OPCODE]:
            if name.startswith("header."):
                continue
            value = getattr(self, name)
            _check_value(self.OPCODE, name, shape, width, value)
        _static_check(self)

    def encode(self) -> int:
        return encode(self)


def _check_value(opcode: Opcode, name: str, shape: Any, width: int, value: Any) -> None:
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        if not isinstance(value, shape):
            raise IllegalInstruction(
                f"{opcode.name}.{name} must be a {shape.__name__}, not {value!r}", field=name)
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise IllegalInstruction(f"{opcode.name}.{name} must be an integer, not {value!r}",
                                 field=name)
    s = shape if not isinstance(shape, int) else unsigned(shape)
    s = s if hasattr(s, "signed") else unsigned(width)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if s.signed else (0, (1 << width) - 1)
    if not lo <= value <= hi:
        raise IllegalInstruction(
            f"{opcode.name}.{name} must be in [{lo}, {hi}] ({width}-bit field), not {value}",
            field=name)


def _positive(instr: Instruction, *names: str) -> None:
    for name in names:
        if getattr(instr, name) == 0:
            raise IllegalInstruction(f"{instr.OPCODE.name}.{name} must be at least 1, not 0",
                                     field=name)


def _static_check(instr: Instruction) -> None:
    """Constraints that hold for every configuration."""
    op = instr.OPCODE
    if op in (Opcode.LOAD, Opcode.STORE):
        _positive(instr, "size0", "count1", "count2")
        if op is Opcode.STORE and instr.buffer is not Buffer.OBUF:
            raise IllegalInstruction(
                f"STORE.buffer must be OBUF (stores read the output buffer), not "
                f"{instr.buffer.name}", field="buffer")
    elif op is Opcode.CONV:
        _positive(instr, "in_h", "in_w", "in_groups", "kernel", "stride", "out_h", "out_w",
                  "chunk_count")
        for pad in ("pad_top", "pad_left"):
            if getattr(instr, pad) >= instr.kernel:
                raise IllegalInstruction(
                    f"CONV.{pad} must be smaller than the kernel ({instr.kernel}), not "
                    f"{getattr(instr, pad)}", field=pad)
        window = instr.kernel * instr.kernel * instr.in_groups
        if instr.chunk_start + instr.chunk_count > window:
            raise IllegalInstruction(
                f"CONV chunks [{instr.chunk_start}, {instr.chunk_start + instr.chunk_count}) "
                f"exceed the {window} chunks of a {instr.kernel}x{instr.kernel}x"
                f"{instr.in_groups}-group window", field="chunk_count")
        if instr.activation is not Activation.NONE and not instr.output:
            raise IllegalInstruction("CONV.activation needs output=1 (it is applied by the "
                                     "post-processing stage)", field="activation")
    elif op is Opcode.POOL:
        _positive(instr, "in_h", "in_w", "groups", "out_h", "out_w")
        if instr.kind is PoolKind.GLOBAL_AVG:
            for name, want in (("kernel", 0), ("stride", 0), ("pad_top", 0), ("pad_left", 0),
                               ("out_h", 1), ("out_w", 1)):
                if getattr(instr, name) != want:
                    raise IllegalInstruction(
                        f"POOL.{name} must be {want} for GLOBAL_AVG, not {getattr(instr, name)}",
                        field=name)
        else:
            _positive(instr, "kernel", "stride")
            for pad in ("pad_top", "pad_left"):
                if getattr(instr, pad) >= instr.kernel:
                    raise IllegalInstruction(
                        f"POOL.{pad} must be smaller than the kernel ({instr.kernel}), not "
                        f"{getattr(instr, pad)}", field=pad)
    elif op is Opcode.ADD:
        _positive(instr, "count")


def _record_class(name: str, opcode: Opcode, doc: str) -> type[Instruction]:
    specs = []
    for fname, shape, _, _ in _FIELDS[opcode]:
        if fname.startswith("header."):
            continue
        if isinstance(shape, type) and issubclass(shape, enum.Enum):
            specs.append((fname, shape, dataclasses.field(default=shape(0))))
        else:
            specs.append((fname, int, dataclasses.field(default=0)))
    cls = dataclasses.make_dataclass(name, specs, bases=(Instruction,), frozen=True,
                                     kw_only=True, namespace={"OPCODE": opcode, "__doc__": doc})
    cls.__module__ = __name__
    return cls


Load = _record_class("Load", Opcode.LOAD, "DMA from DRAM into an on-chip buffer.")
Store = _record_class("Store", Opcode.STORE, "DMA from the output buffer to DRAM.")
Conv = _record_class("Conv", Opcode.CONV, "One systolic-array pass (convolution or matrix tile).")
Pool = _record_class("Pool", Opcode.POOL, "One pooling pass from the input to the output buffer.")
Add = _record_class("Add", Opcode.ADD, "Element-wise add of two rescaled tensors.")
End = _record_class("End", Opcode.END, "End of program.")
_RECORDS: dict[Opcode, type[Instruction]] = {
    Opcode.LOAD: Load, Opcode.STORE: Store, Opcode.CONV: Conv, Opcode.POOL: Pool,
    Opcode.ADD: Add, Opcode.END: End,
}


# ---- encode / decode -----------------------------------------------------------------------

def encode(instr: Instruction) -> int:
    """The 256-bit word of an instruction record, as an unsigned integer."""
    word = 0
    for name, shape, offset, width in _FIELDS[instr.OPCODE]:
        if name == "header.opcode":
            value = instr.OPCODE.value
        elif name.startswith("header."):
            value = int(getattr(instr, name[len("header."):]))
        else:
            value = getattr(instr, name)
            value = value.value if isinstance(value, enum.Enum) else value
        word |= (value & ((1 << width) - 1)) << offset
    return word


def decode(word: int) -> Instruction:
    """The instruction record of a 256-bit word; `IllegalInstruction` says which field is bad."""
    if not 0 <= word < 1 << INSTR_BITS:
        raise IllegalInstruction(f"an instruction word is {INSTR_BITS} bits, not {word!r}",
                                 field="word")
    opcode_field = dict((n, (o, w)) for n, _, o, w in _FIELDS[Opcode.END])["header.opcode"]
    raw_opcode = (word >> opcode_field[0]) & ((1 << opcode_field[1]) - 1)
    try:
        opcode = Opcode(raw_opcode)
    except ValueError:
        raise IllegalInstruction(f"opcode {raw_opcode} is not an instruction (valid: "
                                 f"{', '.join(f'{o.value}={o.name}' for o in Opcode)})",
                                 field="opcode", code=ErrorCode.ILLEGAL_OPCODE) from None
    size = data.Layout.cast(LAYOUTS[opcode]).size
    if word >> size:
        raise IllegalInstruction(
            f"{opcode.name}: reserved bits {size}..{INSTR_BITS - 1} must be zero",
            field="reserved")
    values: dict[str, Any] = {}
    for name, shape, offset, width in _FIELDS[opcode]:
        raw = (word >> offset) & ((1 << width) - 1)
        if name == "header.opcode":
            continue
        if name.startswith("header."):
            values[name[len("header."):]] = bool(raw)
        elif isinstance(shape, type) and issubclass(shape, enum.Enum):
            try:
                values[name] = shape(raw)
            except ValueError:
                raise IllegalInstruction(
                    f"{opcode.name}.{name} = {raw} is not a {shape.__name__} (valid: "
                    f"{', '.join(f'{m.value}={m.name}' for m in shape)})", field=name) from None
        else:
            signed_field = getattr(shape, "signed", False)
            values[name] = raw - (1 << width) if signed_field and raw >> (width - 1) else raw
    return _RECORDS[opcode](**values)


def encode_program(instrs: list[Instruction]) -> bytes:
    """Instruction words in fetch order, each 32 bytes little-endian."""
    return b"".join(encode(i).to_bytes(INSTR_BYTES, "little") for i in instrs)


def decode_program(blob: bytes) -> list[Instruction]:
    if len(blob) % INSTR_BYTES:
        raise IllegalInstruction(
            f"a program is a whole number of {INSTR_BYTES}-byte words, not {len(blob)} bytes",
            field="length")
    out = []
    for index in range(len(blob) // INSTR_BYTES):
        word = int.from_bytes(blob[index * INSTR_BYTES:(index + 1) * INSTR_BYTES], "little")
        try:
            out.append(decode(word))
        except IllegalInstruction as exc:
            raise IllegalInstruction(f"instruction {index}: {exc}", field=exc.field,
                                     code=exc.code) from None
    return out


# ---- configuration-dependent limits --------------------------------------------------------

def _buffer_words(config: AcceleratorConfig, buffer: Buffer) -> int:
    return {Buffer.IBUF: config.ibuf_words, Buffer.WBUF: config.wbuf_words,
            Buffer.PBUF: config.pbuf_words, Buffer.LUT: config.lut_words,
            Buffer.OBUF: config.obuf_words}[buffer]


def buffer_word_bytes(config: AcceleratorConfig, buffer: Buffer) -> int:
    return config.pbuf_word_bytes if buffer is Buffer.PBUF else config.word_bytes


def dma_extent(config: AcceleratorConfig, instr: Instruction) -> tuple[int, int]:
    """(first byte, one past the last byte) a LOAD/STORE touches in DRAM."""
    wb = buffer_word_bytes(config, instr.buffer)
    last = instr.dram_addr + (instr.count2 - 1) * instr.stride2 + \
        (instr.count1 - 1) * instr.stride1 + instr.size0 * wb
    return instr.dram_addr, last


def check(instr: Instruction, config: AcceleratorConfig) -> tuple[ErrorCode, str]:
    """The error the hardware raises for this instruction on this configuration, with a
    message; (ErrorCode.NONE, "") when it may run. The decoder checks in this order:
    fields, alignment, DRAM range, buffer range."""
    op = instr.OPCODE

    def field_error(msg: str) -> tuple[ErrorCode, str]:
        return ErrorCode.ILLEGAL_FIELD, f"{op.name}: {msg}"

    def span(name: str, start: int, words: int, limit: int) -> tuple[ErrorCode, str] | None:
        if start + words > limit:
            return (ErrorCode.BUFFER_RANGE,
                    f"{op.name}: {name} words [{start}, {start + words}) exceed its {limit} words")
        return None

    if op in (Opcode.LOAD, Opcode.STORE):
        wb = buffer_word_bytes(config, instr.buffer)
        for name in ("dram_addr", "stride1", "stride2"):
            if getattr(instr, name) % wb:
                return (ErrorCode.MISALIGNED,
                        f"{op.name}.{name} = {getattr(instr, name)} is not a multiple of the "
                        f"{instr.buffer.name} word ({wb} bytes)")
        _, end = dma_extent(config, instr)
        if end > config.dram_bytes:
            return (ErrorCode.DRAM_RANGE,
                    f"{op.name}: DRAM bytes up to {end} exceed the {config.dram_bytes}-byte DRAM")
        words = instr.size0 * instr.count1 * instr.count2
        err = span(instr.buffer.name, instr.buf_addr, words, _buffer_words(config, instr.buffer))
        return err or (ErrorCode.NONE, "")
    if op is Opcode.CONV:
        if instr.kernel > config.max_kernel:
            return field_error(f"kernel {instr.kernel} exceeds max_kernel {config.max_kernel}")
        if instr.stride > config.max_stride:
            return field_error(f"stride {instr.stride} exceeds max_stride {config.max_stride}")
        if instr.chunk_count > config.contexts:
            return field_error(f"chunk_count {instr.chunk_count} exceeds the {config.contexts} "
                               "weight contexts")
        if instr.in_w * instr.in_groups > config.line_buffer_words:
            return field_error(f"a tile row of {instr.in_w} pixels x {instr.in_groups} groups "
                               f"exceeds the {config.line_buffer_words}-word line buffer")
        pixels = instr.out_h * instr.out_w
        err = (span("IBUF", instr.ibuf_addr, instr.in_groups * instr.in_h * instr.in_w,
                    config.ibuf_words)
               or span("WBUF", instr.wbuf_addr, instr.chunk_count * config.columns,
                       config.wbuf_words)
               or span("ACC", instr.acc_addr, pixels, config.acc_words)
               or (instr.output and (span("OBUF", instr.obuf_addr, pixels, config.obuf_words)
                                     or span("PBUF", instr.pbuf_addr, 1, config.pbuf_words))))
        return err or (ErrorCode.NONE, "")
    if op is Opcode.POOL:
        if instr.kind is not PoolKind.GLOBAL_AVG:
            if instr.kernel > config.max_kernel:
                return field_error(f"kernel {instr.kernel} exceeds max_kernel "
                                   f"{config.max_kernel}")
            if instr.stride > config.max_stride:
                return field_error(f"stride {instr.stride} exceeds max_stride "
                                   f"{config.max_stride}")
            if instr.in_w > config.line_buffer_words:
                return field_error(f"a tile row of {instr.in_w} pixels exceeds the "
                                   f"{config.line_buffer_words}-word line buffer")
        err = (span("IBUF", instr.ibuf_addr, instr.groups * instr.in_h * instr.in_w,
                    config.ibuf_words)
               or span("OBUF", instr.obuf_addr, instr.groups * instr.out_h * instr.out_w,
                       config.obuf_words))
        return err or (ErrorCode.NONE, "")
    if op is Opcode.ADD:
        err = (span("IBUF", instr.a_addr, instr.count, config.ibuf_words)
               or span("IBUF", instr.b_addr, instr.count, config.ibuf_words)
               or span("OBUF", instr.obuf_addr, instr.count, config.obuf_words))
        return err or (ErrorCode.NONE, "")
    return ErrorCode.NONE, ""
