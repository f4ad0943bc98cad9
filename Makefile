# Two entry points for a new user:  make demo  (main job)  and  make test  (the test suite).
# Each creates .venv, installs the CPU PyTorch wheel first (so torch>=... is already met), then xyrt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
CACHE  ?= .cache/xyrt
SYNTH  := $(CACHE)/synth-16k-seed0/model.ckpt
CLIP   := xyrt/data/speech_3.mp3

.PHONY: setup demo test test-avx2 test-aarch64 test-hosts lint format bench verify proxy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[audio,export,ort,openvino,plot,scale,serve,dev]'
	touch $@

setup: $(VENV)/.installed

$(SYNTH): | $(VENV)/.installed
	$(BIN)/xyrt synth -o $(SYNTH) --seed 0

ONNX   := $(CACHE)/synth-16k-seed0/onnx-fp32

$(ONNX)/manifest.json: | $(SYNTH)
	$(BIN)/xyrt export --model $(SYNTH) -o $(ONNX)

# Main job on the built-in default: `xyrt bench` builds (once, cached) a full-size synthetic
# checkpoint and its ONNX export, then measures the published implementation's cost, PyTorch and
# ONNX Runtime on 1/10/30 s clips; then the torch-free runtime encodes and decodes a clip (each
# prints its run time and, apart, the seconds it spent loading the model first).
demo: setup
	mkdir -p out
	XYRT_CACHE=$(CACHE) $(BIN)/xyrt bench --seconds 1,10,30 --runs 3 --json out/bench.json --plot out/bench.png
	$(BIN)/xyrt encode --model $(ONNX) $(CLIP) -o out/speech_3.npy
	$(BIN)/xyrt decode --model $(ONNX) out/speech_3.npy -o out/speech_3.wav
	@echo "table above; JSON in out/bench.json, plot in out/bench.png, audio in out/speech_3.wav"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The golden parity tests run twice: as the host chooses, then under another kernel path (AVX2
# oneDNN/MKL/ATen kernels, one thread, one ORT intra-op thread), so a float32 near-tie that flips
# with the GEMM kernels shows up here, not only on another machine (codes must be identical
# except reference near-ties, xyrt.runtime.compare).
KERNEL_PATH_2 := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
                 OMP_NUM_THREADS=1 XYRT_TEST_ORT_THREADS=1

test: lint
	$(BIN)/python -m pytest -q
	$(KERNEL_PATH_2) $(BIN)/python -m pytest -q -m "golden and not fullsize"

# The torch-free runtime on CPUs this machine is not (tests/torchfree/emulate.py, Debian's
# qemu-user, root): x86-64 without AVX-512/VNNI, and aarch64 (Jetson, Raspberry Pi). Golden codes
# and audio on ONNX Runtime and OpenVINO, and INT8 agreement, emulated.
test-avx2: setup
	$(BIN)/python tests/torchfree/emulate.py avx2

test-aarch64: setup
	$(BIN)/python tests/torchfree/emulate.py aarch64

test-hosts: test-avx2 test-aarch64

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup $(SYNTH)
	$(BIN)/python benchmarks/torch_trim_vs_pad.py --checkpoint $(SYNTH)
	$(BIN)/python benchmarks/onnx_vs_torch.py --checkpoint $(SYNTH) --out $(ONNX)

verify: setup $(ONNX)/manifest.json
	$(BIN)/xyrt verify --model $(ONNX)

# The trained proxy (issue 30): a small XY-Tokenizer trained here on espeak-ng speech (needs
# espeak-ng: apt-get install espeak-ng) and the bundled clips, one thread at about 0.6 s a step:
# about 60 minutes; model.ckpt (fp16), config.yaml and its model card (card.md, card.json) in
# $(PROXY_DIR). Rebuilt only when the training code changes.
PROXY_STEPS ?= 5500
PROXY_DIR   := $(CACHE)/proxy-16k-seed0

$(PROXY_DIR)/model.ckpt: $(wildcard training/*.py) training/proxy_16k.yaml | $(VENV)/.installed
	$(BIN)/python training/train_proxy.py --out $(PROXY_DIR) --cache $(CACHE) --steps $(PROXY_STEPS)

proxy: $(PROXY_DIR)/model.ckpt

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
