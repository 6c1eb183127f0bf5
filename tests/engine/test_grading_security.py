"""Hostile and broken submissions: each attack fails, and only the affected tests lose points.

All submissions are graded once, in parallel, by a module-scoped fixture; each
test then inspects one submission's Gradescope results. Attacks that only a
file-system sandbox can stop (reading solutions, writing results, network,
processes outliving the worker) are checked where grading runs in bubblewrap.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autograder import batch, sandbox, zygote_client
from autograder.config import Limits
from autograder.proxy import StudentModule
from autograder.student_errors import BadReturnValue, StudentCrash
from autograder.student_process import StudentProcess
from tests.helpers import REPO, make_submission

pytestmark = pytest.mark.slow

MARKER = "course-test-leftover-7f3a"

ATTACKS: dict[str, str] = {
    "reference": "",
    "patch_comparisons": """
        import torch.testing
        torch.allclose = lambda *a, **k: True
        torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
        torch.equal = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)

        def softmax(x, dim=-1):
            return torch.zeros_like(x)
    """,
    "always_equal": """
        class AlwaysEqual:
            def __eq__(self, other):
                return True
            def __getattr__(self, name):
                return self

        def softmax(x, dim=-1):
            return AlwaysEqual()
    """,
    "tensor_subclass": """
        class Liar(torch.Tensor):
            def __eq__(self, other):
                return True

        def softmax(x, dim=-1):
            return torch.zeros_like(x).as_subclass(Liar)
    """,
    "stack_peek": """
        import inspect

        def softmax(x, dim=-1):
            for info in inspect.stack():
                for name, value in info.frame.f_locals.items():
                    if name in ("expected", "want", "exp_weights") and isinstance(value, torch.Tensor):
                        return value
            raise RuntimeError("no expected value on the stack")
    """,
    "sys_exit": """
        import sys

        def causal_mask(seq_len, device=None):
            sys.exit(0)
    """,
    "os_exit": """
        import os

        def padding_mask(lengths, seq_len):
            os._exit(0)
    """,
    "hang": """
        def scaled_dot_product_attention(q, k, v, mask=None):
            while True:
                pass
    """,
    "memory_bomb": """
        def softmax(x, dim=-1):
            hog = []
            while True:
                hog.append(torch.ones(2**28, dtype=torch.uint8))
    """,
    "print_flood": """
        _softmax = softmax

        def softmax(x, dim=-1):
            print("x" * 5_000_000)
            return _softmax(x, dim)
    """,
    "exit_at_import": """
        import os
        os._exit(3)
    """,
    # Three ways past the op recorder (a TorchFunctionMode in the worker), each with a correct softmax.
    "jit_builtin": """
        @torch.jit.script
        def _scripted(x: torch.Tensor, dim: int) -> torch.Tensor:
            return torch.softmax(x, dim)

        def softmax(x, dim=-1):
            return _scripted(x, dim)
    """,
    "disable_torch_function": """
        def softmax(x, dim=-1):
            with torch._C.DisableTorchFunction():
                return torch.softmax(x, dim)
    """,
    "patch_recorder": """
        import sys

        for _module in list(sys.modules.values()):
            _recorder = vars(_module).get("OpRecorder") if hasattr(_module, "__dict__") else None
            if isinstance(_recorder, type):
                _recorder.__enter__ = lambda self: self
                _recorder.__exit__ = lambda self, *exc: None

        def softmax(x, dim=-1):
            return torch.softmax(x, dim)
    """,
    "huge_return": """
        def causal_mask(seq_len, device=None):
            return torch.zeros(700 * 2**20, dtype=torch.uint8)
    """,
}


def _sandbox_attacks(out_dir: Path, class_dir: Path) -> dict[str, str]:
    targets = {
        "solutions": REPO / "solutions" / "01-attention" / "attention.py",
        "hidden": REPO / "autograder" / "hidden" / "01-attention" / "test_attention.py",
        "course_yml": REPO / "course.yml",
        "classmate": class_dir / "reference" / "attention.py",
    }
    return {
        "snoop": f"""
            import os, socket

            def softmax(x, dim=-1):
                found = []
                for name, path in {{{", ".join(f"{k!r}: {str(v)!r}" for k, v in targets.items())}}}.items():
                    try:
                        open(path).read()
                        found.append("read:" + name)
                    except OSError:
                        pass
                for path in ({str(out_dir / "results.json")!r}, {str(out_dir / "gradebook.csv")!r}, "/etc/owned"):
                    try:
                        open(path, "w").write("{{}}")
                        found.append("wrote:" + path)
                    except OSError:
                        pass
                try:
                    socket.create_connection(("1.1.1.1", 80), timeout=1)
                    found.append("network")
                except OSError:
                    pass
                raise RuntimeError(f"uid={{os.getuid()}} found={{found}}")
        """,
        "fork_bomb": """
            import os

            def causal_mask(seq_len, device=None):
                while True:
                    try:
                        os.fork()
                    except OSError:
                        pass
        """,
        "leftover": f"""
            import os, subprocess

            def padding_mask(lengths, seq_len):
                subprocess.Popen(["sh", "-c", "exec -a {MARKER} sleep 600"], start_new_session=True)
                raise RuntimeError("left a process behind")
        """,
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, week01, sandboxed) -> dict[str, dict]:
    class_dir = tmp_path_factory.mktemp("class")
    out_dir = tmp_path_factory.mktemp("out")
    attacks = dict(ATTACKS)
    if sandboxed:
        attacks.update(_sandbox_attacks(out_dir, class_dir))
    for name, override in attacks.items():
        make_submission(class_dir / name, week01, textwrap.dedent(override))
    results = {}
    for outcome in batch.grade_many(
        week01, [(n, class_dir / n) for n in attacks], jobs=2, extra_hidden=[class_dir, out_dir]
    ):
        assert outcome.error is None, f"{outcome.name}: {outcome.error}"
        results[outcome.name] = outcome.report.to_gradescope() if outcome.report else None
    results["__out_dir__"] = {"path": str(out_dir)}
    return results


def _tests(results: dict, prefix: str) -> list[dict]:
    found = [t for t in results["tests"] if t["name"].startswith(prefix)]
    assert found, prefix
    return found


def _assert_only_prefix_fails(results: dict, prefixes: tuple[str, ...]) -> None:
    """Tests of the attacked function fail; every other test still passes."""
    for test in results["tests"]:
        attacked = test["name"].startswith(prefixes)
        assert (test["status"] == "failed") == attacked or (not attacked and test["status"] == "passed"), test


def test_reference_gets_full_marks(graded, week01):
    assert graded["reference"]["score"] == graded["reference"]["max_score"] == week01.max_score


def test_gradescope_schema(graded):
    results = graded["reference"]
    assert set(results) == {"score", "max_score", "execution_time", "output", "tests"}
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")


@pytest.mark.parametrize("name", ["patch_comparisons", "always_equal", "tensor_subclass", "stack_peek"])
def test_cheating_softmax_earns_nothing(graded, name):
    results = graded[name]
    for test in _tests(results, "test_softmax"):
        assert test["status"] == "failed", test
        assert test["score"] == 0
    # Softmax is used inside attention too, so those tests fail as well; the masks still pass.
    for test in _tests(results, "test_causal_mask") + _tests(results, "test_padding_mask"):
        assert test["status"] == "passed", test


def test_feedback_never_shows_hidden_test_source(graded, week01):
    """No failure message quotes a line of the hidden tests (pytest runs with --assert=plain)."""
    source_lines = {
        line.strip()
        for path in week01.hidden_dir.glob("test_*.py")
        for line in path.read_text().splitlines()
        if len(line.strip()) > 25 and not line.strip().startswith(("#", '"', "hint=", "name="))
    }
    for name, results in graded.items():
        for test in results.get("tests", []):
            for line in source_lines:
                assert line not in test["output"], (name, test["name"], line)


def test_always_equal_feedback_names_the_type(graded):
    output = _tests(graded["always_equal"], "test_softmax_values")[0]["output"]
    assert "expected a torch.Tensor, got an object of type AlwaysEqual" in output


def test_stack_peek_finds_nothing(graded):
    output = _tests(graded["stack_peek"], "test_softmax_values")[0]["output"]
    assert "no expected value on the stack" in output


# The op checks also refuse a file that imports sys or calls os._exit: the grader cannot vouch for it.
OP_CHECKS = ("test_softmax_does_not_call_builtin", "test_attention_uses_no_builtin_attention")


def test_sys_exit_fails_only_that_function(graded):
    results = graded["sys_exit"]
    _assert_only_prefix_fails(results, ("test_causal_mask", *OP_CHECKS))
    assert "sys.exit(0)" in _tests(results, "test_causal_mask")[0]["output"]


def test_os_exit_fails_only_that_function(graded):
    results = graded["os_exit"]
    _assert_only_prefix_fails(results, ("test_padding_mask", *OP_CHECKS))
    assert "died" in _tests(results, "test_padding_mask")[0]["output"]


@pytest.mark.parametrize("name", ["jit_builtin", "disable_torch_function", "patch_recorder"])
def test_hiding_a_builtin_from_the_op_recorder_earns_nothing_for_it(graded, name):
    """Today's worker records no softmax in each; the grader's own reading of the file refuses the check."""
    results = graded[name]
    for test in _tests(results, OP_CHECKS[0]) + _tests(results, OP_CHECKS[1]):
        assert test["status"] == "failed", test
        assert "cannot be checked" in test["output"], test
        assert "attention.py line" in test["output"], test
    assert all(test["status"] == "passed" for test in _tests(results, "test_softmax_values"))


def test_hang_times_out_with_a_clear_message(graded):
    results = graded["hang"]
    _assert_only_prefix_fails(results, ("test_attention",))
    outputs = [t["output"] for t in _tests(results, "test_attention")]
    assert "timed out after 5 s in scaled_dot_product_attention" in outputs
    assert results["execution_time"] < 60


def test_memory_bomb_is_contained(graded):
    results = graded["memory_bomb"]
    _assert_only_prefix_fails(results, ("test_softmax", "test_attention"))
    outputs = " ".join(t["output"] for t in _tests(results, "test_softmax"))
    assert "memory" in outputs or "timed out" in outputs


def test_print_flood_is_capped_and_harmless(graded, week01):
    results = graded["print_flood"]
    assert results["score"] == week01.max_score
    assert "more bytes of output dropped" in results["output"]
    assert len(results["output"]) < 80_000


def test_exit_at_import_fails_fast(graded):
    results = graded["exit_at_import"]
    assert results["score"] == 0
    assert "could not be started" in results["tests"][-1]["output"]
    assert results["execution_time"] < 60


def test_huge_return_value_is_refused(graded):
    results = graded["huge_return"]
    _assert_only_prefix_fails(results, ("test_causal_mask",))
    assert "more than 512 MB" in _tests(results, "test_causal_mask")[0]["output"]


@pytest.mark.sandbox
def test_sandbox_hides_course_and_class_files(graded, sandboxed):
    if not sandboxed:
        pytest.skip("needs root and bubblewrap (as in CI)")
    output = _tests(graded["snoop"], "test_softmax_values")[0]["output"]
    assert "found=[]" in output, output
    uid = int(output.split("uid=")[1].split()[0])
    assert sandbox.SANDBOX_UID_BASE <= uid < sandbox.SANDBOX_UID_BASE + sandbox.SANDBOX_UID_COUNT
    out_dir = Path(graded["__out_dir__"]["path"])
    assert not (out_dir / "results.json").exists()
    assert not Path("/etc/owned").exists()


@pytest.mark.sandbox
def test_fork_bomb_is_contained(graded, sandboxed):
    if not sandboxed:
        pytest.skip("needs root and bubblewrap (as in CI)")
    results = graded["fork_bomb"]
    assert "timed out" in _tests(results, "test_causal_mask")[0]["output"]
    assert _tests(results, "test_padding_mask")[0]["status"] == "passed"


@pytest.mark.sandbox
def test_no_process_outlives_the_worker(graded, sandboxed):
    if not sandboxed:
        pytest.skip("needs root and bubblewrap (as in CI)")
    assert "left a process behind" in _tests(graded["leftover"], "test_padding_mask")[0]["output"]
    time.sleep(0.5)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        engine = b"sandboxed.zygote" in cmdline or b"triton_aot.py" in cmdline
        if engine and not cmdline.startswith(os.fsencode(Path(sys.executable).parent)):
            continue  # another checkout's grader running at the same time on this machine
        if (
            MARKER.encode() in cmdline
            or sandbox.SANDBOX_UID_BASE <= owner < sandbox.SANDBOX_UID_BASE + sandbox.SANDBOX_UID_COUNT
        ):
            survivors.append((pid, cmdline))
    assert survivors == []


LEAVE_JUNK = """
    import ctypes, os

    os.unlink(__file__)  # so the child's own folder frees nothing
    os.makedirs("/tmp/keep", exist_ok=True)
    for size in (15 * 2**20, 2**20, 4096, 1):
        for i in range(100_000):
            try:
                with open(f"/tmp/keep/{size}-{i}", "wb") as handle:
                    handle.write(b"x" * size)
            except OSError:  # the sandbox's /tmp is full
                break
    os.chmod("/tmp/keep", 0o555)  # and its files cannot be deleted by their owner... unless it chmods back
    libc = ctypes.CDLL(None)
    libc.shmget(0, 64 * 2**20, 0o1600)  # a System V shared memory segment outlives its process
"""

NEXT_STUDENT = """
    def causal_mask(seq_len, device=None):
        with open("/proc/sysvipc/shm") as table:
            segments = len(table.read().splitlines()) - 1
        if segments:
            raise RuntimeError(f"{segments} shared memory segments left by someone else")
        return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()
"""


@pytest.mark.sandbox
def test_what_one_child_leaves_behind_does_not_hurt_the_next(tmp_path, week01, sandboxed):
    """The zygote's /tmp and IPC namespace are shared by its children: each child's leftovers go when it does."""
    if not sandboxed:
        pytest.skip("needs root and bubblewrap (as in CI)")
    make_submission(tmp_path / "a_junk", week01, textwrap.dedent(LEAVE_JUNK))
    make_submission(tmp_path / "b_next", week01, textwrap.dedent(NEXT_STUDENT))
    outcomes = {
        o.name: o.report.to_gradescope() if o.report else None
        for o in batch.grade_many(week01, [(n, tmp_path / n) for n in ("a_junk", "b_next")], jobs=1)
    }
    # Leaving junk is not itself wrong; ctypes, os.chmod and /proc only cost the op checks.
    op_checks = sum(week01.tests[name] for name in OP_CHECKS)
    assert outcomes["a_junk"]["score"] == week01.max_score - op_checks
    assert outcomes["b_next"]["score"] == week01.max_score - op_checks, outcomes["b_next"]["tests"]


FORGE_PREFIX = """
    import gc, io, os, struct, sys, time, torch

    def channel():
        return next(o for o in gc.get_objects() if isinstance(o, sys.modules["sandboxed.protocol"].Channel))
"""


def call_forger(tmp_path, body: str) -> None:
    """Call ``f`` of a one-file submission that forges a reply on the worker's own channel, then hangs."""
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "forger.py").write_text(textwrap.dedent(FORGE_PREFIX) + textwrap.dedent(body))
    process = StudentProcess(folder, ["forger.py"], Limits(call_timeout_s=5))
    try:
        StudentModule(process, "forger").f()
    finally:
        process.close()


def test_a_forged_reply_that_unfolds_exponentially_is_refused(tmp_path):
    """A reply of a few hundred bytes that shares one list 2**60 times must not eat the grader."""
    body = """
        def f():
            v = []
            for _ in range(60):
                v = [v, v]
            channel().send({"ok": True, "value": v, "ops": []})
            time.sleep(10**6)
    """
    started = time.monotonic()
    with pytest.raises(BadReturnValue, match="too deep or too large"):
        call_forger(tmp_path, body)
    assert time.monotonic() - started < 10


def test_submission_files_never_pass_through_the_zygote(tmp_path, week01, monkeypatch):
    """The zygote's memory is inherited by every later child, so no student's files may enter it."""
    sent: list[dict] = []
    original = zygote_client.send_message

    def spy(control, message, fds=None):
        sent.append(message)
        return original(control, message, fds)

    monkeypatch.setattr(zygote_client, "send_message", spy)
    secret = "CLASSMATE_SOURCE_MARKER_4711"
    make_submission(tmp_path / "sub", week01, f"# {secret}\n")
    process = StudentProcess(tmp_path / "sub", list(week01.files), week01.limits)
    try:
        assert StudentModule(process, "attention").causal_mask(2).tolist() == [[True, False], [True, True]]
    finally:
        process.close()
    assert any(m.get("op") == "spawn" for m in sent)
    assert secret not in repr(sent)
    assert all("files" not in m for m in sent)


def test_a_forged_reply_in_another_format_is_refused(tmp_path):
    """Only torch.save's zip format is read, so the size of its pickle can be checked before unpickling."""
    body = """
        def f():
            buffer = io.BytesIO()
            torch.save({"ok": True, "value": [1, 2], "ops": []}, buffer, _use_new_zipfile_serialization=False)
            os.write(channel().write_fd, struct.pack(">Q", buffer.tell()) + buffer.getvalue())
            time.sleep(10**6)
    """
    with pytest.raises(StudentCrash, match="not plain data of a sane size"):
        call_forger(tmp_path, body)


def test_a_compressed_reply_is_refused_before_it_is_inflated(tmp_path):
    """A DEFLATE-compressed torch.save archive is small on the wire and huge in the grader: refused unread."""
    body = """
        def f():
            import zipfile
            plain = io.BytesIO()
            torch.save({"ok": True, "value": torch.zeros(2**22, dtype=torch.uint8), "ops": []}, plain)
            packed = io.BytesIO()
            with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as out:
                for info in source.infolist():
                    out.writestr(info.filename, source.read(info.filename))
            data = packed.getvalue()
            assert len(data) < len(plain.getvalue()) // 100  # 4 MB of zeros inflate from a few KB
            os.write(channel().write_fd, struct.pack(">Q", len(data)) + data)
            time.sleep(10**6)
    """
    with pytest.raises(StudentCrash, match="not plain data of a sane size"):
        call_forger(tmp_path, body)


# -- week 10's lab: points only from evidence the grader produces itself ------------------------------------

LAB10_TESTS = {"test_lab_report", "test_lab_loss_curve", "test_lab_train_log", "test_lab_checkpoint_samples"}
LAB10_FILES = ("report.md", "loss_curve.png", "train_log.csv", "checkpoint.pt")
# load_checkpoint hands back a model that reads each next character off its own input: loss 0 on any text.
LAB10_ORACLE = """
    class _Oracle(nn.Module):
        def __init__(self, vocab_size, max_len):
            super().__init__()
            self.vocab_size = vocab_size
            self.position_embedding = nn.Embedding(max_len, 1)

        def forward(self, input_ids, attention_mask=None):
            following = torch.roll(input_ids, -1, dims=1)
            return F.one_hot(following, self.vocab_size).float() * 50.0


    _honest_load_checkpoint = load_checkpoint


    def load_checkpoint(source):
        _, state = _honest_load_checkpoint(source)
        return _Oracle(state["config"]["vocab_size"], state["config"]["max_len"]).eval(), state
"""
LAB10_MADE_UP_REPORT = "# Week 10 lab report\n\n## What I changed and why\n\n" + (
    "I changed the learning rate, the batch, the width and the depth, and every change helped a great deal. " * 6
)


def _png_header_only(width: int = 800, height: int = 600) -> bytes:
    """The 8-byte signature and a valid IHDR chunk, then garbage: what a header-only check accepts."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + os.urandom(64)


def _untrained_checkpoint(path: Path, step: int) -> None:
    """A checkpoint in the format save_checkpoint writes, of a freshly initialised (untrained) GPT."""
    import torch

    from autograder import config, reference

    honest = torch.load(REPO / "solutions" / "10-training" / "checkpoint.pt", weights_only=True)
    module = reference.load(config.load(REPO).week("10"))
    torch.manual_seed(0)
    model = module.GPT(**honest["config"])
    state = {"model": model.state_dict(), "optimizer": None, "step": step, "config": honest["config"]}
    torch.save({**state, "vocab": honest["vocab"]}, path)


@pytest.fixture(scope="module")
def lab10_graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Week 10 submissions with honest code and forged lab files, graded on the lab's tests."""
    from autograder import config, grading
    from autograder.reference import carried_modules

    week = config.load(REPO).week("10")
    honest = week.solution_dir
    carried = carried_modules(week, [], limit_mb=week.limits.max_file_mb)  # the reference gpt, bert, block ...
    class_dir = tmp_path_factory.mktemp("lab10")
    forged_log = (honest / "train_log.csv").read_text().rstrip("\n").rsplit("\n", 1)[0] + "\n1500,1.3000,1.4000\n"
    submissions: dict[str, tuple[str, dict[str, bytes | str]]] = {
        "honest": ("", {}),
        # the log claims a better final loss than the handed-in checkpoint has
        "forged_log": ("", {"train_log.csv": forged_log}),
        "png_header": ("", {"loss_curve.png": _png_header_only()}),
        "made_up_report": ("", {"report.md": LAB10_MADE_UP_REPORT}),
        "oracle": (LAB10_ORACLE, {"checkpoint.pt": b""}),  # an untrained checkpoint, written below
    }
    results = {}
    for name, (override, files) in submissions.items():
        folder = make_submission(class_dir / name, week, textwrap.dedent(override))
        for file in LAB10_FILES:
            content = files.get(file, (honest / file).read_bytes())
            (folder / file).write_bytes(content.encode() if isinstance(content, str) else content)
        if name == "oracle":
            _untrained_checkpoint(folder / "checkpoint.pt", step=1500)
        report = grading.run_tests(
            week,
            folder,
            week.hidden_dir,
            points=week.tests,
            hidden_paths=grading.hidden_paths(week, [class_dir]),
            carried=carried,
            only=LAB10_TESTS,
        )
        results[name] = report.to_gradescope()
    return results


def _lab10_status(results: dict) -> dict[str, str]:
    return {test["name"]: test["status"] for test in results["tests"] if test["max_score"] > 0}


def test_lab10_honest_hand_in_gets_the_lab_points(lab10_graded):
    results = lab10_graded["honest"]
    assert _lab10_status(results) == dict.fromkeys(LAB10_TESTS - {"test_lab_report"}, "passed")
    assert results["score"] == results["max_score"] > 0


def test_lab10_forged_train_log_earns_nothing(lab10_graded):
    """A log whose final loss the checkpoint does not have: checked against the grader's own measurement."""
    status = _lab10_status(lab10_graded["forged_log"])
    assert status["test_lab_train_log"] == "failed"
    assert status["test_lab_checkpoint_samples"] == "passed"  # the checkpoint itself is honest
    feedback = next(t["output"] for t in lab10_graded["forged_log"]["tests"] if t["name"] == "test_lab_train_log")
    assert "1.400" in feedback
    assert "checkpoint" in feedback


def test_lab10_png_header_alone_earns_nothing(lab10_graded):
    """A PNG signature and IHDR chunk with garbage after them: the plot is decoded, not read off its header."""
    status = _lab10_status(lab10_graded["png_header"])
    assert status["test_lab_loss_curve"] == "failed"
    assert status["test_lab_train_log"] == status["test_lab_checkpoint_samples"] == "passed"


def test_lab10_made_up_report_earns_no_autograder_points(lab10_graded):
    """report.md is graded by a person: the autograder gives it no points and says it is graded by hand."""
    from autograder import config

    results = lab10_graded["made_up_report"]
    assert "test_lab_report" not in _lab10_status(results)
    assert all(t["name"] != "test_lab_report" for t in results["tests"])
    assert "graded by hand" in results["output"]
    assert "test_lab_report" in results["output"]
    week = config.load(REPO).week("10")
    assert week.manual == {"test_lab_report": 1.5}
    assert "test_lab_report" not in week.tests


def test_lab10_oracle_model_from_load_checkpoint_earns_nothing(lab10_graded):
    """The student's load_checkpoint is not used: the weights go into the grader's own GPT, which is causal."""
    status = _lab10_status(lab10_graded["oracle"])
    assert status["test_lab_checkpoint_samples"] == "failed"
    assert status["test_lab_train_log"] == "failed"
    feedback = next(t["output"] for t in lab10_graded["oracle"]["tests"] if t["name"] == "test_lab_checkpoint_samples")
    assert "a trained model is below" in feedback
