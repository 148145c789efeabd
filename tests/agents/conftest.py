# test_agents_cocotb.py holds cocotb tests, which run inside the simulator (tests/test_tb_agents.py
# starts them); pytest must not collect them itself.
collect_ignore = ["test_agents_cocotb.py"]
