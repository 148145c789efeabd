"""What the device needs around it to become a bitstream: the out-of-context harness that keeps
both buses live on four pins, and the board tops."""
