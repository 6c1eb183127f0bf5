# Two commands for a newcomer:  `make grade` (grade the example class)  and  `make test`.
# Both create the virtual environment on first use and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORPUS ?= ../shared/data/tinyshakespeare.txt

.PHONY: setup grade test test-fast lint bench bench10 release lab00 lab03 lab10 lab11 clean

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,export,scale]'
	@# The sandbox: bubblewrap, installed when we are root and it is missing (CI, containers).
	@if [ "$$(id -u)" = 0 ] && ! command -v bwrap >/dev/null 2>&1; then \
	  echo "installing bubblewrap (the grading sandbox)"; \
	  (apt-get install -y -q bubblewrap || (apt-get update -q && apt-get install -y -q bubblewrap)) >/dev/null 2>&1 \
	  || echo "note: could not install bubblewrap; student code will run without a file-system sandbox"; \
	fi
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the course (and bubblewrap when root)

grade: $(STAMP)  ## grade the example class for week 01 and print the gradebook
	$(BIN)/course grade-all 01 examples/class-01 --out build/class-01/gradebook.csv --jobs 2

test: $(STAMP)  ## the project's checks: lint, tests, skeletons in sync, validate every week
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest
	$(BIN)/course release --check
	$(BIN)/course validate --jobs 2

test-fast: $(STAMP)  ## the quick loop: skips the slow grading tests
	$(BIN)/pytest -m "not slow"

release: $(STAMP)  ## regenerate assignments/ from solutions/
	$(BIN)/course release

bench: $(STAMP)  ## grading speed against the `import torch` floor
	$(BIN)/python bench/grade_speed.py

lab00: $(STAMP)  ## week 00 lab on the reference solution: build/lab00/accuracy_vs_length.png, gradient_vs_distance.png and report.md (about 4 min on 2 idle cores)
	$(BIN)/python weeks/00-why-attention/lab_bottleneck.py --impl solutions/00-why-attention/rnn.py --out build/lab00

lab03: $(STAMP)  ## week 03 lab on the reference solution: build/lab03/loss_vs_length.png and report.md
	$(BIN)/python weeks/03-positional/lab_extrapolation.py --impl solutions/03-positional/positional.py \
	  --corpus $(CORPUS) --out build/lab03

lab10: $(STAMP)  ## week 10 lab on the reference solution: trains the reference recipe into build/lab10 (about 3 min)
	$(BIN)/python weeks/10-training/train_lm.py --impl solutions/10-training/training.py \
	  --corpus $(CORPUS) --out build/lab10 --config reference

lab11: $(STAMP)  ## week 11 lab on the reference solution: pretrain (cached), fine-tune vs from scratch, head grid into build/lab11
	$(BIN)/python weeks/11-applications/lab_finetune.py --impl solutions/11-applications/applications.py \
	  --corpus $(CORPUS) --out build/lab11

bench10: $(STAMP)  ## week 10: nanoGPT's baseline vs the reference recipe in the same training time (about 6 min)
	$(BIN)/python bench/train_lm.py --corpus $(CORPUS)

clean:
	rm -rf build .pytest_cache .ruff_cache
