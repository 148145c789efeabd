# The two set-up commands of the README: `make sim` (the main job) and `make test` (the whole suite).
# Each creates the virtual environment on first use, from pyproject.toml alone.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all env icarus sim sim-long conformance mutants linux soak soak-merge test test-long verilog lint bench synth bitstream clean

ARGS ?=

all: test

$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing the pinned dependencies (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[sim,test,synth,board]'
	@touch $@

env: $(STAMP)

# The simulator of `sim`, `conformance` and `soak`: verilator (default) or icarus (Icarus Verilog
# 11 or later from the system: apt-get install iverilog).
SIM ?= verilator

# The conformance regression (ARGS='--config small --test NAME --waves --seed N').
sim: $(STAMP)
	$(VPY) -m virtio_gpio.cli sim --sim $(SIM) $(ARGS)

# The 16-bit index wrap: 65,600 requests in lock-step on the small configuration (minutes; CI runs it).
sim-long: $(STAMP)
	VIRTIO_GPIO_LONG=1 $(VPY) -m virtio_gpio.cli sim --config small --test index_wrap_after_65536_requests

# The regression over seeds 1,2,3 and a short random campaign, and a report per configuration with
# a verdict for every requirement ID, under build/conformance/<config>/ (ARGS='--config plain
# --seeds 1,4 --copy-to-docs'). Fails when a MUST row fails or is not tested, or a campaign seed fails.
# Another implementation: make conformance DUT=a.v,b.sv TOP=<module> DUT_CONFIG=<file.toml>
# (docs/external-dut.md; `virtio-gpio describe` writes a description file).
DUT        ?=
TOP        ?=
DUT_CONFIG ?=
DUT_ARGS := $(if $(DUT),--dut $(DUT)) $(if $(TOP),--top $(TOP)) $(if $(DUT_CONFIG),--dut-config $(DUT_CONFIG))
conformance: $(STAMP)
	$(VPY) -m virtio_gpio.cli conformance --sim $(SIM) $(DUT_ARGS) $(ARGS)

# The random campaign, one simulator per core: SEEDS=N (1..N) or a shard's range (SEEDS=1000-1999),
# CONFIG=small,wide,plain, REQUESTS per seed; every 100th seed runs past the 16-bit index wrap.
# Progress on stderr, the closing table on stdout, the report in build/soak/campaign.json.
SEEDS    ?= 8
CONFIG   ?= small
REQUESTS ?= 2500
soak: $(STAMP)
	$(VPY) -m virtio_gpio.cli campaign --sim $(SIM) $(if $(DUT),$(DUT_ARGS),--config $(CONFIG)) --seeds $(SEEDS) --requests $(REQUESTS) --out build/soak $(ARGS)

# One report from the reports of several shards: make soak-merge REPORTS='shard1/ shard2/'
soak-merge: $(STAMP)
	$(VPY) -m virtio_gpio.cli campaign-merge $(REPORTS) --out build/soak/merged $(ARGS)

# The mutant check: every mutant of the device (tb/mutants.py) through `conformance --dut` must
# fail the requirement it breaks, and the unmutated device must pass (MUTANT_SIMS=icarus, ARGS='--only NAME').
MUTANT_SIMS ?= verilator,icarus
mutants: $(STAMP)
	$(VPY) -m virtio_gpio.cli mutants --sim $(MUTANT_SIMS) $(ARGS)

# Linux guests in QEMU (TCG) with the real gpio-virtio driver on the vhost-user backend, Debian's
# 6.1 and bookworm-backports' 6.12, each on the golden model and on the simulated RTL (the model
# beside it): fetches and caches QEMU 10, the kernels, their headers and the tools under
# build/linux/ (apt; root installs QEMU's libraries); one named result per step
# (ARGS='--kernel 6.1 --backend rtl --seed 2 --waves').
linux: $(STAMP)
	$(VPY) -m virtio_gpio.cli linux $(ARGS)

# Latency, throughput and simulation-speed figures, printed and written to build/bench.json.
bench: $(STAMP)
	$(VPY) -m virtio_gpio.tb.benchmark

# The device as one Verilog file (ARGS: --ngpio, --names, --dma-addr-width ...; see --help).
verilog: $(STAMP)
	$(VPY) -m virtio_gpio.cli verilog $(ARGS)

# verilator --lint-only -Wall on that file, with the waivers of hdl/lint.vlt.
lint: verilog
	$(VPY) -m virtio_gpio.tb.lint build/virtio_gpio.v

# Out-of-context builds (iCE40 UP5K, ECP5 85F x gpio8/32/128/32-plain) and the board bitstreams;
# the table is printed and written to build/synth/report.json. Fails when a build misses its
# frequency or does not fit (ARGS='--part ecp5-85f --config gpio32 --board none --freq 90').
synth: $(STAMP)
	$(VPY) -m virtio_gpio.cli synth $(ARGS)

# One board's bitstream (BOARD=ulx3s or icebreaker), under build/synth/boards/$(BOARD)/.
BOARD ?= ulx3s
bitstream: $(STAMP)
	$(VPY) -m virtio_gpio.cli synth --part none --board $(BOARD) $(ARGS)

# Icarus Verilog, the second simulator, is a system package: installed here when apt-get can
# (as root); elsewhere its tests are skipped with the command that installs it.
icarus:
	@command -v iverilog >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "== installing Icarus Verilog (apt-get install iverilog)"; \
	    apt-get install -y -qq --no-install-recommends iverilog >/dev/null || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends iverilog >/dev/null; }; \
	  else echo "== Icarus Verilog is not installed: its tests will be skipped (install: sudo apt-get install iverilog)"; fi; }

test: $(STAMP) icarus
	$(VPY) -m pytest

# The tests marked long (a third back-pressure seed, Icarus on the wide configuration); CI runs them.
test-long: $(STAMP) icarus
	$(VPY) -m pytest -m long

clean:
	rm -rf build .pytest_cache .hypothesis
