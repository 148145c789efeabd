"""Small blocks that put the device into a system on a board: a UART, a UART-to-AXI4-Lite bridge, an AXI4-Lite address decoder and an on-chip guest memory."""
