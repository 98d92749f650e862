"""FPGA board top levels: the accelerator with an on-chip DRAM stand-in and a UART bridge."""
