# diffusemix-bench: common tasks. `make help` lists them.
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY := .venv/bin/python

.DEFAULT_GOAL := help
.PHONY: help install test test-all lint format train table report stores demo study bench bench-gpu clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

install: ## Install uv if missing, then the locked environment with the dev extra into .venv
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || \
		python3 -m pip install --user --quiet uv || \
		python3 -m pip install --user --quiet --break-system-packages uv || \
		(curl -LsSf https://astral.sh/uv/install.sh | sh)
	$(UV) sync --locked --extra dev --compile-bytecode

test: ## Run the default test suite (no slow or GPU tests)
	$(PY) -m pytest -q -n 2

test-all: ## Run every test, slow ones included (GPU tests skip without a GPU)
	$(PY) -m pytest -q -m "slow or not slow"

lint: ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: ## Apply ruff formatting and safe fixes
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

train: ## Train with Hydra overrides: make train ARGS="dataset=flowers102 model=resnet18"
	$(PY) train.py $(ARGS)

table: ## One paper table's sweep: make table N=5, or N=figure5 / N=lambda / N=study_flowers / N=demo (ARGS="--cfg job" lists its runs; ARGS="hydra/launcher=slurm" on SLURM)
	$(PY) train.py --multirun experiment=$(if $(filter figure5 lambda demo study_flowers,$(N)),$(N),table$(N)) $(ARGS)

stores: ## List the edit stores (make stores ARGS="paths.cache_dir=<folder> dataset=<name>")
	$(PY) stores.py $(ARGS)

report: ## A table beside the paper's numbers: make report N=5 RUNS=<sweep folder> (N=none: the runs' own table; no N: the experiment that made the runs)
	$(PY) report.py $(if $(N),experiment=$(if $(filter figure5 lambda demo study_flowers none,$(N)),$(N),table$(N))) runs=$(RUNS) $(ARGS)

demo: ## The whole loop offline on CPU in a few minutes (shapes dataset, tiny edits, 2 methods x 2 seeds, FGSM, report); ARGS="quick=true" for the one-epoch form
	$(PY) demo.py $(ARGS)

study: ## The committed real study (Flowers-102 from ../shared/data, 6 methods x 3 seeds, < 1 h on 2 cores) and its report
	$(PY) train.py --multirun experiment=study_flowers paths.data_dir=../shared/data ckpt_path=auto hydra.sweep.dir=outputs/study_flowers
	$(PY) report.py experiment=study_flowers runs=outputs/study_flowers out=experiments/results/study_flowers

bench: ## CPU benchmarks side by side with their baselines (< 10 min on 2 cores): generation vs the official loop, the DiffuseMix loader vs aug=none and its share of a training step, composition vs a training step; results in benchmarks/results/
	$(PY) -m benchmarks.generation_vs_official --images 1 --prompts 9 --steps 100 --resolutions 32
	$(PY) -m benchmarks.diffusemix_loader --workers 2 --epochs 2 --rounds 5
	$(PY) -m benchmarks.composition --shapes preactresnet18:32:100,resnet18:224:16 --repeats 5 --warmup 1

bench-gpu: ## The GPU benchmarks in one script (< 8 min on one GPU): generation with the real InstructPix2Pix architecture (random weights) against the official loop, torch.compile, training step against a bare loop, composition, optimisation mixes
	$(PY) -m benchmarks.gpu_suite

clean: ## Remove tool caches and run outputs (keeps .venv, data, and the edits and fractal banks under paths.cache_dir)
	rm -rf .pytest_cache .ruff_cache outputs multirun lightning_logs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
