"""The cocotb side of the agent tests: the DmaLoopback fixture and the tests that run in the simulator."""
