"""The FPGA flow: out-of-context and board builds on the open toolchain, and their resource and timing report."""
