"""AXI4 and AXI4-Lite bus signatures, with the port names integrators and cocotbext-axi expect.

Every signature is *flat*: its members are the AMBA signal names themselves (`arvalid`,
`araddr`, ..., `rready`), seen from the master (`Out` = driven by the master). A component
that masters a bus declares `m_axi: Out(AXI4Signature(...))`; a slave declares
`s_axil: In(AXI4LiteSignature(...))`.

Verilog names. Amaranth flattens a component's ports by joining the member path with `__`,
so `m_axi` becomes the Verilog ports `m_axi__arvalid`, `m_axi__araddr`, ... .
`conventional_ports(component)` joins with a single `_` instead, giving the conventional
`m_axi_arvalid`; pass it as `ports=` to `amaranth.back.verilog.convert`. cocotbext-axi builds
its buses with cocotb-bus, which looks up `<prefix><bus_separator><signal>` (separator `_` by
default, matched case-insensitively), so:

- with `conventional_ports`: `AxiBus.from_prefix(dut, "m_axi")`,
  `AxiLiteBus.from_prefix(dut, "s_axil")`;
- with Amaranth's default names: `AxiBus.from_prefix(dut, "m_axi", bus_separator="__")`.

Signals present: AR `arid araddr arlen arsize arburst arcache arprot arvalid arready`,
R `rid rdata rresp rlast rvalid rready`, AW `awid awaddr awlen awsize awburst awcache awprot
awvalid awready`, W `wdata wstrb wlast wvalid wready`, B `bid bresp bvalid bready`. Lock,
QoS, region and user signals are left out (cocotbext-axi treats them as optional; AXI4 gives
them safe defaults when absent). AXI4-Lite has the same channels without id, len, size, burst,
last, cache and prot.
"""

from __future__ import annotations

from amaranth.hdl import Signal, ValueCastable
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXIBurst", "AXIResp", "AXI4Signature", "AXI4ReadSignature", "AXI4WriteSignature",
           "AXI4LiteSignature", "connect_channels", "conventional_ports"]


class AXIBurst(enum.Enum, shape=2):
    FIXED = 0
    INCR = 1
    WRAP = 2


class AXIResp(enum.Enum, shape=2):
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


def _check_bits(name: str, value: int, allowed: str, ok: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not ok:
        raise ValueError(f"{name} must be {allowed}, not {value!r}")


def _check_data_bits(data_bits: int) -> None:
    _check_bits("data_bits", data_bits, "a power of two from 32 to 1024",
                isinstance(data_bits, int) and 32 <= data_bits <= 1024
                and data_bits & (data_bits - 1) == 0)


def _check_addr_bits(addr_bits: int) -> None:
    _check_bits("addr_bits", addr_bits, "an integer from 1 to 64",
                isinstance(addr_bits, int) and 1 <= addr_bits <= 64)


def _read_members(*, data_bits: int, addr_bits: int, id_bits: int) -> dict[str, wiring.Member]:
    return {
        "arid": Out(id_bits), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(AXIBurst), "arcache": Out(4), "arprot": Out(3),
        "arvalid": Out(1), "arready": In(1),
        "rid": In(id_bits), "rdata": In(data_bits), "rresp": In(AXIResp), "rlast": In(1),
        "rvalid": In(1), "rready": Out(1),
    }


def _write_members(*, data_bits: int, addr_bits: int, id_bits: int) -> dict[str, wiring.Member]:
    return {
        "awid": Out(id_bits), "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(AXIBurst), "awcache": Out(4), "awprot": Out(3),
        "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1),
        "wvalid": Out(1), "wready": In(1),
        "bid": In(id_bits), "bresp": In(AXIResp), "bvalid": In(1), "bready": Out(1),
    }


class _AXI4Base(wiring.Signature):
    _channels: tuple = ()

    def __init__(self, *, data_bits: int, id_bits: int, addr_bits: int = 32) -> None:
        _check_data_bits(data_bits)
        _check_addr_bits(addr_bits)
        _check_bits("id_bits", id_bits, "an integer from 1 to 16",
                    isinstance(id_bits, int) and 1 <= id_bits <= 16)
        self.data_bits, self.addr_bits, self.id_bits = data_bits, addr_bits, id_bits
        members: dict[str, wiring.Member] = {}
        for build in self._channels:
            members.update(build(data_bits=data_bits, addr_bits=addr_bits, id_bits=id_bits))
        super().__init__(members)

    @property
    def size_log2(self) -> int:
        """The `arsize`/`awsize` of a full-width beat: log2 of the bytes in one beat."""
        return (self.data_bits // 8).bit_length() - 1

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.data_bits == other.data_bits
                and self.addr_bits == other.addr_bits and self.id_bits == other.id_bits)

    def __hash__(self) -> int:
        return hash((type(self), self.data_bits, self.addr_bits, self.id_bits))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(data_bits={self.data_bits}, "
                f"addr_bits={self.addr_bits}, id_bits={self.id_bits})")


class AXI4Signature(_AXI4Base):
    """A full AXI4 bus: AR, R, AW, W and B channels (master's view)."""
    _channels = (_read_members, _write_members)


class AXI4ReadSignature(_AXI4Base):
    """The read half of AXI4 (AR and R), with the same member names as `AXI4Signature`."""
    _channels = (_read_members,)


class AXI4WriteSignature(_AXI4Base):
    """The write half of AXI4 (AW, W and B), with the same member names as `AXI4Signature`."""
    _channels = (_write_members,)


class AXI4LiteSignature(wiring.Signature):
    """An AXI4-Lite bus (master's view): `data_bits` (32 or 64) of data, `addr_bits` of byte
    address."""

    def __init__(self, *, addr_bits: int, data_bits: int = 32) -> None:
        _check_addr_bits(addr_bits)
        _check_bits("data_bits", data_bits, "32 or 64", data_bits in (32, 64))
        self.addr_bits, self.data_bits = addr_bits, data_bits
        super().__init__({
            "awaddr": Out(addr_bits), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(AXIResp), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_bits), "rresp": In(AXIResp), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other) -> bool:
        return (type(self) is type(other) and self.addr_bits == other.addr_bits
                and self.data_bits == other.data_bits)

    def __hash__(self) -> int:
        return hash((type(self), self.addr_bits, self.data_bits))

    def __repr__(self) -> str:
        return f"AXI4LiteSignature(addr_bits={self.addr_bits}, data_bits={self.data_bits})"


def connect_channels(m, bus, *parts) -> None:
    """Drive a component's own master port `bus` (e.g. its `m_axi`) from sub-component master
    ports `parts` that each carry a subset of its members (e.g. a read engine's
    `AXI4ReadSignature` and a write engine's `AXI4WriteSignature`). Every member of `bus` must
    come from exactly one part; `wiring.connect` cannot do this because the parts' signatures
    differ from the bus's."""
    owner: dict[str, int] = {}
    for index, part in enumerate(parts):
        for name, member in part.signature.members.items():
            if name not in bus.signature.members:
                raise ValueError(f"part {index} has member {name!r}, which the bus lacks")
            if name in owner:
                raise ValueError(f"member {name!r} comes from parts {owner[name]} and {index}")
            if member != bus.signature.members[name]:
                raise ValueError(f"member {name!r} is {member!r} in part {index} but "
                                 f"{bus.signature.members[name]!r} on the bus")
            owner[name] = index
    missing = sorted(set(bus.signature.members) - set(owner))
    if missing:
        raise ValueError(f"bus members {', '.join(missing)} come from no part")
    for name, index in owner.items():
        part = parts[index]
        if bus.signature.members[name].flow == Out:
            m.d.comb += getattr(bus, name).eq(getattr(part, name))
        else:
            m.d.comb += getattr(part, name).eq(getattr(bus, name))


def conventional_ports(component: wiring.Component) -> list[tuple[str, Signal, None]]:
    """The component's ports named by joining member paths with `_` (`m_axi_arvalid`) instead
    of Amaranth's `__`; for `verilog.convert(component, ports=...)`. Directions are inferred
    from the design (every `Out` member of the component must be driven)."""
    ports = []
    for path, _member, value in component.signature.flatten(component):
        signal = value.as_value() if isinstance(value, ValueCastable) else value
        ports.append(("_".join(map(str, path)), signal, None))
    return ports
