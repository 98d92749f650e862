"""The accelerator's bus interfaces: AXI4/AXI4-Lite signatures, the DMA read and write
engines (AXI4 masters) and the control/status register file (AXI4-Lite slave).
See docs/integration.md for ports, the register map and the start/done protocol."""

from .bursts import Burst, BurstGenerator, Descriptor, word_beats_log2
from .csr import CSR, PerfEvents, Reg
from .read_dma import ReadDMA
from .signatures import (AXI4LiteSignature, AXI4ReadSignature, AXI4Signature,
                         AXI4WriteSignature, AXIBurst, AXIResp, connect_channels,
                         conventional_ports)
from .write_dma import WriteDMA

__all__ = [
    "AXIBurst", "AXIResp", "AXI4Signature", "AXI4ReadSignature", "AXI4WriteSignature",
    "AXI4LiteSignature", "connect_channels", "conventional_ports",
    "Descriptor", "Burst", "BurstGenerator", "word_beats_log2",
    "ReadDMA", "WriteDMA", "CSR", "PerfEvents", "Reg",
]
