"""The week 10 training lab runs end to end (tiny settings), resumes, and writes what the grader reads.

It loads ``training.py`` with the earlier weeks' modules it imports (``gpt`` ...): the student's
own beside ``--impl`` (or in their earlier weeks' folders) where there is one, else the reference.

The hand-in checks of the hidden tests (``test_lab_report``, ``test_lab_loss_curve``,
``test_lab_train_log``, ``test_lab_checkpoint_samples``) are run here on the lab's own outputs,
with a stand-in for the ``handed_in`` fixture: the template report must fail until it is filled
in, the plot and the log must have the format the grader expects, and the grader's own reader of
``checkpoint.pt`` must take what the lab writes, measure the loss the log ends with, and refuse
what is not a plain checkpoint (compressed, pickled objects, a huge model, a vocabulary that
leaves out the held-out text's characters, weights of the wrong shapes).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
import torch

from autograder import CheckFailed, config, reference
from tests.helpers import REPO, hidden_tests

lab = reference.load_file(REPO / "weeks" / "10-training" / "train_lm.py", name="lab_train_lm")

hidden = hidden_tests("10-training", "hidden_training_for_lab")

REFERENCE = REPO / "solutions" / "10-training" / "training.py"
reference_module = reference.load(config.load(REPO).week("10"))  # the grader's `reference` fixture
TINY = ["--set", "n_layers=1", "--set", "d_model=16", "--set", "n_heads=2", "--set", "context=16", "--set", "batch=4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 80)
    return path


def run(corpus, out, *extra: str) -> int:
    argv = ["--corpus", str(corpus), "--out", str(out), "--impl", str(REFERENCE), "--quiet", "--sample", "30"]
    return lab.main([*argv, *TINY, *extra])


def handed_in_from(folder):
    def read(name: str) -> bytes | None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None

    return read


def test_lab_trains_logs_plots_checkpoints_and_samples(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "12", "--eval-interval", "4") == 0
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(row["step"]) for row in rows] == [0, 4, 8, 12]
    assert rows[0]["train_loss"] == "nan"
    assert all(float(row["val_loss"]) > 0 for row in rows)
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert (out / "loss_curve.png").read_bytes()[:8] == hidden.PNG_SIGNATURE
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 12
    assert metrics["config"]["n_layers"] == 1
    sample = (out / "samples.txt").read_text()
    assert sample.startswith("ROMEO:\n")
    ref = lab.load_impl(REFERENCE)
    model, state = ref.load_checkpoint(str(out / "checkpoint.pt"))
    assert state["step"] == 12
    assert state["vocab"] == "".join(sorted(set(corpus.read_text())))
    assert state["config"]["max_len"] == 16
    assert state["optimizer"] is not None
    assert not model.training
    # the grader's checks of the hand-in: the plot and the log pass (the loss does not fall far enough in 12 steps)
    hidden.test_lab_loss_curve(handed_in_from(out))
    with pytest.raises(CheckFailed, match="validation loss"):
        hidden.test_lab_train_log(handed_in_from(out), reference_module)
    # the template report is refused until its TODOs are replaced
    with pytest.raises(CheckFailed, match="TODO"):
        hidden.test_lab_report(handed_in_from(out))
    report = (out / "report.md").read_text()
    assert "loss_curve.png" in report
    assert "## What I changed and why" in report
    filled = report.replace(
        report[report.index("TODO: which") : report.index("## What I observed")],
        "I doubled the learning rate to 2e-3 and kept everything else as in the baseline. " * 3 + "\n\n",
    ).replace("TODO: describe", "I saw")
    (out / "report.md").write_text(filled)
    hidden.test_lab_report(handed_in_from(out))


def test_lab_uses_your_earlier_modules_where_you_have_them(tmp_path):
    """training.py imports gpt (week 06): the lab takes the one beside --impl, else the reference."""
    mine = tmp_path / "10-training"
    mine.mkdir()
    (mine / "training.py").write_bytes(REFERENCE.read_bytes())
    assert lab.load_impl(mine / "training.py").gpt.__file__ == str(REPO / "solutions" / "06-gpt2" / "gpt.py")
    gpt = (REPO / "solutions" / "06-gpt2" / "gpt.py").read_text()
    (mine / "gpt.py").write_text(gpt + "\nMINE = True\n")
    impl = lab.load_impl(mine / "training.py")
    assert impl.gpt.MINE
    assert issubclass(impl.GPT, impl.gpt.GPT)
    with pytest.raises(SystemExit, match="cannot import"):
        lab.load_impl(tmp_path / "missing.py")


def test_lab_resumes_from_its_checkpoint(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "6", "--eval-interval", "3") == 0
    (out / "report.md").write_text("my own report")
    first = torch.load(out / "checkpoint.pt", weights_only=True)
    assert first["step"] == 6
    assert run(corpus, out, "--iters", "9", "--eval-interval", "3", "--resume") == 0
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(row["step"]) for row in rows] == [0, 3, 6, 9]
    second = torch.load(out / "checkpoint.pt", weights_only=True)
    assert second["step"] == 9
    assert (out / "report.md").read_text() == "my own report"  # never overwritten
    # the optimiser state went on: Adam's step count is 9, not 3
    steps = {int(state["step"]) for state in second["optimizer"]["state"].values()}
    assert steps == {9}


def test_lab_time_budget_and_settings(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "100000", "--eval-interval", "1000", "--max-seconds", "2") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 1 <= metrics["steps"] < 100000  # stopped by the clock, not by the schedule
    assert metrics["train_seconds"] >= 2.0
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert int(rows[-1]["step"]) == metrics["steps"]  # evaluated when the time ran out
    config = lab.apply_overrides(lab.CONFIGS["baseline"], ["lr=2e-3", "checkpointing=true", "amp_dtype=bfloat16"])
    assert (config.lr, config.checkpointing, config.amp_dtype) == (2e-3, True, "bfloat16")
    with pytest.raises(SystemExit):
        lab.apply_overrides(config, ["learning_rate=1"])


def test_baseline_is_nanogpts_cpu_configuration():
    config = lab.CONFIGS["baseline"]
    assert (config.n_layers, config.n_heads, config.d_model, config.context, config.batch) == (4, 4, 128, 64, 12)
    assert (config.iters, config.lr, config.min_lr, config.warmup, config.dropout) == (2000, 1e-3, 1e-4, 100, 0.0)
    assert (config.beta2, config.weight_decay, config.max_norm) == (0.99, 0.1, 1.0)


def test_corpus_windows_reach_the_last_character():
    """Every window of the split can be drawn, the last one included (``randint(len - length + 1)``).

    A text of 100 characters splits into 90 for training and 10 for validation. With windows of 89
    training characters there are exactly two (starts 0 and 1); with 90, one; the last start must come up.
    """
    corpus = lab.Corpus("".join(chr(ord("a") + i % 26) for i in range(100)))
    assert (len(corpus.train), len(corpus.val)) == (90, 10)
    generator = torch.Generator().manual_seed(0)
    windows = corpus.batch(64, 89, generator)
    assert windows.shape == (64, 89)
    starts = {int(window[0]) for window in windows}
    assert starts == {int(corpus.train[0]), int(corpus.train[1])}  # the window ending at the last character too
    whole = corpus.batch(3, 90, generator)  # as long as the split: one window, the whole split
    assert torch.equal(whole, corpus.train.expand(3, 90))
    val = corpus.val_windows(9, count=64)
    assert {int(window[0]) for window in val} == {int(corpus.val[0]), int(corpus.val[1])}
    assert torch.equal(corpus.val_windows(10, count=2), corpus.val.expand(2, 10))


def test_the_grader_reads_the_labs_checkpoint_and_the_log_agrees_with_it(tmp_path):
    """The lab trained on the held-out passages themselves: the grader's measurement and the log's last row agree."""
    corpus = tmp_path / "passages.txt"
    corpus.write_text(hidden.HELD_OUT * 4)
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "30", "--eval-interval", "10") == 0
    handed = hidden.load_handed_in_checkpoint((out / "checkpoint.pt").read_bytes(), reference_module)
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert handed.step == int(rows[-1]["step"]) == 30
    assert type(handed.model) is reference_module.GPT  # the grader's class, not the student's
    assert abs(handed.loss - float(rows[-1]["val_loss"])) < hidden.LOG_TOLERANCE
    hidden.test_lab_loss_curve(handed_in_from(out))


def checkpoint_bytes(**changes) -> bytes:
    """The reference hand-in's checkpoint with some entries changed, saved as torch.save saves it."""
    state = torch.load(REPO / "solutions" / "10-training" / "checkpoint.pt", weights_only=True)
    state.update(changes)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def refused(data: bytes) -> str:
    with pytest.raises(CheckFailed) as info:
        hidden.load_handed_in_checkpoint(data, reference_module)
    return str(info.value)


def test_the_reference_hand_in_checkpoint_is_read_by_the_grader():
    handed = hidden.load_handed_in_checkpoint(checkpoint_bytes(), reference_module)
    assert handed.step == 1500
    assert handed.loss < hidden.HELD_OUT_LOSS
    assert not handed.model.training


def test_the_grader_refuses_what_is_not_a_plain_checkpoint():
    honest = checkpoint_bytes()
    packed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(honest)) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    assert "compressed" in refused(packed.getvalue())
    legacy = io.BytesIO()
    torch.save({"model": {}}, legacy, _use_new_zipfile_serialization=False)
    assert "not a torch.save file" in refused(legacy.getvalue())
    whole_model = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), whole_model)  # a pickled module: code, not data
    assert "weights_only" in refused(whole_model.getvalue())
    state = torch.load(io.BytesIO(honest), weights_only=True)
    huge = dict(state["config"], d_model=4096, n_layers=64, d_ff=16384)
    assert "more than" in refused(checkpoint_bytes(config=huge))
    assert "config['n_layers']" in refused(checkpoint_bytes(config=dict(state["config"], n_layers=True)))
    assert "vocabulary lacks" in refused(
        checkpoint_bytes(vocab=state["vocab"][::-1][:2], config=dict(state["config"], vocab_size=2))
    )
    assert "vocab" in refused(checkpoint_bytes(vocab=state["vocab"][:-1]))
    wrong = dict(state["model"], **{"norm_f.weight": torch.ones(3)})
    assert "norm_f.weight" in refused(checkpoint_bytes(model=wrong))
    assert "unexpected lm_head.weight" in refused(
        checkpoint_bytes(model=dict(state["model"], **{"lm_head.weight": torch.ones(1)}))
    )
    assert "'step'" in refused(checkpoint_bytes(step="1500"))


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_grader_decodes_the_plot():
    from PIL import Image

    def verdict(data: bytes) -> str:
        with pytest.raises(CheckFailed) as info:
            hidden.test_lab_loss_curve(lambda name: data)
        return str(info.value)

    hidden.test_lab_loss_curve(handed_in_from(REPO / "solutions" / "10-training"))
    honest = (REPO / "solutions" / "10-training" / "loss_curve.png").read_bytes()
    assert "does not decode" in verdict(honest[:2000])  # the header and a little data
    assert "blank" in verdict(png(Image.new("RGB", (640, 480), "white")))
    noise = Image.frombytes("L", (640, 480), bytes(torch.randint(256, (640 * 480,), dtype=torch.uint8).tolist()))
    assert "no background" in verdict(png(noise))
    assert "at least 200 x 150" in verdict(png(Image.new("RGB", (100, 100), "white")))
