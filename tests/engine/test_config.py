"""course.yml parsing: a valid course, and every malformed input named by its key path."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from autograder import config
from autograder.config import ConfigError, Limits

REPO = Path(__file__).resolve().parents[2]  # tests/engine/ -> the repository


def minimal() -> dict:
    """A small valid course: two weeks, one with its own limits and visibility."""
    return {
        "title": "Test course",
        "defaults": {"visibility": "after_due_date", "limits": {"call_timeout_s": 7, "memory_mb": 2048}},
        "weeks": [
            {
                "id": "01-attention",
                "title": "Attention",
                "files": ["attention.py"],
                "limits": {"call_timeout_s": 3, "max_output_kb": 8},
                "tests": {"test_softmax": 2, "test_mask": 1.5},
            },
            {
                "id": "02-blocks",
                "title": "Blocks",
                "files": ["blocks.py", "layers.py"],
                "visibility": "hidden",
                "tests": {"test_block": 3},
            },
        ],
    }


def parse_error(data, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        config.parse(data, tmp_path)
    return str(info.value)


# -- a valid course ------------------------------------------------------------


def test_minimal_course_parses(tmp_path):
    course = config.parse(minimal(), tmp_path)
    assert course.title == "Test course"
    assert course.root == tmp_path
    assert [w.id for w in course.weeks] == ["01-attention", "02-blocks"]
    first, second = course.weeks
    assert first.title == "Attention"
    assert first.files == ("attention.py",)
    assert first.modules == ["attention"]
    assert first.tests == {"test_softmax": 2.0, "test_mask": 1.5}
    assert first.max_score == 3.5
    assert first.number == 1
    assert second.number == 2
    assert second.files == ("blocks.py", "layers.py")
    assert first.solution_dir == tmp_path / "solutions" / "01-attention"
    assert first.assignment_dir == tmp_path / "assignments" / "01-attention"
    assert first.hidden_dir == tmp_path / "autograder" / "hidden" / "01-attention"
    assert first.public_dir == tmp_path / "autograder" / "public" / "01-attention"
    assert first.handout == tmp_path / "weeks" / "01-attention" / "README.md"


def test_limits_defaults_and_overrides(tmp_path):
    first, second = config.parse(minimal(), tmp_path).weeks
    builtin = Limits()
    # defaults.limits override the built-in values; the week's own limits override those.
    assert second.limits == Limits(call_timeout_s=7.0, memory_mb=2048)
    assert first.limits == Limits(call_timeout_s=3.0, memory_mb=2048, max_output_kb=8)
    assert first.limits.total_timeout_s == builtin.total_timeout_s
    assert first.limits.max_processes == builtin.max_processes
    assert isinstance(first.limits.call_timeout_s, float)
    assert isinstance(first.limits.memory_mb, int)
    assert isinstance(first.limits.max_output_kb, int)


def test_limits_without_defaults_are_builtin(tmp_path):
    data = minimal()
    del data["defaults"]
    del data["weeks"][0]["limits"]
    course = config.parse(data, tmp_path)
    assert all(week.limits == Limits() for week in course.weeks)
    assert course.weeks[0].visibility == "visible"


def test_visibility_default_and_override(tmp_path):
    first, second = config.parse(minimal(), tmp_path).weeks
    assert first.visibility == "after_due_date"
    assert second.visibility == "hidden"


@pytest.mark.parametrize("key", ["01", "1", "01-attention", "attention", " 01 "])
def test_week_lookup(tmp_path, key):
    course = config.parse(minimal(), tmp_path)
    assert course.week(key).id == "01-attention"


def test_week_lookup_second_week(tmp_path):
    course = config.parse(minimal(), tmp_path)
    assert course.week("2").id == "02-blocks"
    assert course.week("blocks").id == "02-blocks"


@pytest.mark.parametrize("key", ["03", "3", "transformers", "attn", ""])
def test_unknown_week_lists_known_weeks(tmp_path, key):
    course = config.parse(minimal(), tmp_path)
    with pytest.raises(ConfigError) as info:
        course.week(key)
    message = str(info.value)
    assert "unknown week" in message
    assert "01-attention" in message
    assert "02-blocks" in message


# -- malformed inputs ----------------------------------------------------------


@pytest.mark.parametrize("data", [None, [], "a string", 3])
def test_top_level_not_a_mapping(tmp_path, data):
    message = parse_error(data, tmp_path)
    assert "top level" in message
    assert "mapping" in message


def test_missing_title(tmp_path):
    data = minimal()
    del data["title"]
    message = parse_error(data, tmp_path)
    assert "title" in message
    assert "string" in message


def test_title_not_a_string(tmp_path):
    data = minimal()
    data["title"] = 12
    message = parse_error(data, tmp_path)
    assert "title" in message
    assert "12" in message


@pytest.mark.parametrize("weeks", [None, {"01-attention": {}}, "01-attention"])
def test_weeks_not_a_list(tmp_path, weeks):
    data = minimal()
    data["weeks"] = weeks
    message = parse_error(data, tmp_path)
    assert "weeks" in message
    assert "a list" in message


def test_week_not_a_mapping(tmp_path):
    data = minimal()
    data["weeks"][1] = "02-blocks"
    message = parse_error(data, tmp_path)
    assert "weeks[1]" in message
    assert "mapping" in message


@pytest.mark.parametrize("week_id", ["1-attn", "01_attention", "001-attention", "01-Attention", "attention", "01-"])
def test_week_id_bad_format(tmp_path, week_id):
    data = minimal()
    data["weeks"][0]["id"] = week_id
    message = parse_error(data, tmp_path)
    assert "weeks[0].id" in message
    assert "01-attention" in message  # the expected form
    assert repr(week_id) in message


def test_week_id_missing(tmp_path):
    data = minimal()
    del data["weeks"][1]["id"]
    message = parse_error(data, tmp_path)
    assert "weeks[1].id" in message


def test_week_title_missing(tmp_path):
    data = minimal()
    del data["weeks"][0]["title"]
    message = parse_error(data, tmp_path)
    assert "weeks[0].title" in message


@pytest.mark.parametrize("files", [None, "attention.py", {"attention.py": 1}])
def test_files_not_a_list(tmp_path, files):
    data = minimal()
    data["weeks"][0]["files"] = files
    message = parse_error(data, tmp_path)
    assert "weeks[0].files" in message
    assert "list" in message


@pytest.mark.parametrize(("name", "index"), [("notes.txt", 0), ("attention", 0), ("sub/attention.py", 0), ("x.py/", 0)])
def test_bad_file_name(tmp_path, name, index):
    data = minimal()
    data["weeks"][0]["files"] = [name]
    message = parse_error(data, tmp_path)
    assert f"weeks[0].files[{index}]" in message
    assert ".py file name" in message
    assert repr(name) in message


def test_bad_file_name_second_entry(tmp_path):
    data = minimal()
    data["weeks"][1]["files"] = ["blocks.py", "../layers.py"]
    message = parse_error(data, tmp_path)
    assert "weeks[1].files[1]" in message
    assert "'../layers.py'" in message


def test_file_name_not_a_string(tmp_path):
    data = minimal()
    data["weeks"][0]["files"] = [3]
    message = parse_error(data, tmp_path)
    assert "weeks[0].files[0]" in message


@pytest.mark.parametrize("tests", [None, ["test_softmax"], "test_softmax: 2"])
def test_tests_not_a_mapping(tmp_path, tests):
    data = minimal()
    data["weeks"][0]["tests"] = tests
    message = parse_error(data, tmp_path)
    assert "weeks[0].tests" in message
    assert "mapping" in message


def test_points_a_string(tmp_path):
    data = minimal()
    data["weeks"][0]["tests"]["test_softmax"] = "two"
    message = parse_error(data, tmp_path)
    assert "weeks[0].tests.test_softmax" in message
    assert "number of points" in message
    assert "'two'" in message


@pytest.mark.parametrize("points", [True, None, [1]])
def test_points_not_a_number(tmp_path, points):
    data = minimal()
    data["weeks"][1]["tests"]["test_block"] = points
    message = parse_error(data, tmp_path)
    assert "weeks[1].tests.test_block" in message


def test_negative_points(tmp_path):
    data = minimal()
    data["weeks"][0]["tests"]["test_mask"] = -1
    message = parse_error(data, tmp_path)
    assert "weeks[0].tests.test_mask" in message
    assert "negative" in message


def test_zero_points_allowed(tmp_path):
    data = minimal()
    data["weeks"][0]["tests"]["test_mask"] = 0
    assert config.parse(data, tmp_path).weeks[0].tests["test_mask"] == 0.0


@pytest.mark.parametrize("where", ["defaults", "week"])
def test_unknown_limit_key(tmp_path, where):
    data = minimal()
    if where == "defaults":
        data["defaults"]["limits"]["gpu_count"] = 1
        path = "defaults.limits.gpu_count"
    else:
        data["weeks"][0]["limits"]["gpu_count"] = 1
        path = "weeks[0].limits.gpu_count"
    message = parse_error(data, tmp_path)
    assert path in message
    assert "unknown limit" in message
    for known in ("call_timeout_s", "total_timeout_s", "memory_mb", "max_processes", "max_file_mb", "max_output_kb"):
        assert known in message


@pytest.mark.parametrize("value", [0, -5, -0.5])
def test_non_positive_limit(tmp_path, value):
    data = minimal()
    data["weeks"][0]["limits"]["memory_mb"] = value
    message = parse_error(data, tmp_path)
    assert "weeks[0].limits.memory_mb" in message
    assert "positive number" in message


@pytest.mark.parametrize("value", ["10", True, None])
def test_limit_not_a_number(tmp_path, value):
    data = minimal()
    data["defaults"]["limits"]["call_timeout_s"] = value
    message = parse_error(data, tmp_path)
    assert "defaults.limits.call_timeout_s" in message
    assert "positive number" in message


def test_limits_not_a_mapping(tmp_path):
    data = minimal()
    data["weeks"][0]["limits"] = [5]
    message = parse_error(data, tmp_path)
    assert "weeks[0].limits" in message
    assert "mapping" in message


def test_defaults_not_a_mapping(tmp_path):
    data = minimal()
    data["defaults"] = ["visible"]
    message = parse_error(data, tmp_path)
    assert "defaults" in message
    assert "mapping" in message


@pytest.mark.parametrize("where", ["week", "defaults"])
def test_bad_visibility(tmp_path, where):
    data = minimal()
    if where == "week":
        data["weeks"][1]["visibility"] = "secret"
        path = "weeks[1].visibility"
    else:
        data["defaults"]["visibility"] = "secret"
        path = "defaults.visibility"
    message = parse_error(data, tmp_path)
    assert path in message
    assert "'secret'" in message
    for known in config.VISIBILITIES:
        assert known in message


def test_duplicate_week_ids(tmp_path):
    data = minimal()
    data["weeks"].append(copy.deepcopy(data["weeks"][0]))
    message = parse_error(data, tmp_path)
    assert "duplicate" in message
    assert "01-attention" in message


def test_messages_name_the_file(tmp_path):
    data = minimal()
    data["weeks"][0]["tests"]["test_softmax"] = "two"
    assert parse_error(data, tmp_path).startswith("course.yml: ")


# -- load() and find_root() ----------------------------------------------------


def test_load_reads_course_yml(tmp_path):
    (tmp_path / "course.yml").write_text(
        "title: Tiny\nweeks:\n  - id: 01-attention\n    title: A\n    files: [attention.py]\n    tests: {test_a: 1}\n"
    )
    course = config.load(tmp_path)
    assert course.title == "Tiny"
    assert course.root == tmp_path
    assert course.week("1").tests == {"test_a": 1.0}


def test_load_invalid_yaml(tmp_path):
    (tmp_path / "course.yml").write_text("title: Tiny\nweeks: [\n  - id: 01-x\n   bad: : :\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert "course.yml" in message
    assert "not valid YAML" in message


def test_load_malformed_yaml_content(tmp_path):
    (tmp_path / "course.yml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level"):
        config.load(tmp_path)


def test_load_missing_course_yml(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "course.yml") in message
    assert "does not exist" in message


def test_find_root_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ROOT_ENV, str(tmp_path))
    assert config.ROOT_ENV == "COURSE_ROOT"
    assert config.find_root() == tmp_path.resolve()
    assert config.find_root(REPO) == tmp_path.resolve()  # the variable wins over the search


def test_load_uses_env_root(tmp_path, monkeypatch):
    (tmp_path / "course.yml").write_text(
        "title: From env\nweeks:\n  - id: 07-x\n    title: X\n    files: [x.py]\n    tests: {test_x: 1}\n"
    )
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    course = config.load()
    assert course.title == "From env"
    assert course.root == tmp_path.resolve()


def test_find_root_searches_upwards(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_ROOT", raising=False)
    (tmp_path / "course.yml").write_text("title: x\nweeks: []\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert config.find_root(nested) == tmp_path.resolve()


# -- the repository's own course.yml -------------------------------------------


def test_repository_course_loads():
    course = config.load(REPO)
    assert course.title
    assert course.weeks
    for week in course.weeks:
        assert re.fullmatch(r"\d{2}-[a-z0-9-]+", week.id)
        assert week.files, week.id
        assert week.tests, f"{week.id} has no tests"
        for name, points in week.tests.items():
            assert name.startswith("test_"), name
            assert points > 0, f"{week.id}: {name} has {points} points"
        assert week.max_score > 0
        assert week.solution_dir.is_dir(), week.solution_dir
        for name in week.files:
            assert (week.solution_dir / name).is_file(), name


def test_repository_week01_overrides_call_timeout():
    week = config.load(REPO).week("01")
    assert week.limits.call_timeout_s == 5.0
    assert week.limits.total_timeout_s == 120.0


# -- items graded by hand (`manual:`) ------------------------------------------


def test_manual_items_are_outside_the_autograders_points(tmp_path):
    data = minimal()
    data["weeks"][0]["manual"] = {"test_report": 1.5, "presentation": 2}
    first, second = config.parse(data, tmp_path).weeks
    assert first.manual == {"test_report": 1.5, "presentation": 2.0}
    assert first.max_score == 3.5  # the hidden tests' points only
    assert first.manual_points == 3.5
    assert second.manual == {}
    assert second.manual_points == 0.0


@pytest.mark.parametrize(
    ("manual", "expected"),
    [
        (["test_report"], "weeks[0].manual: expected a mapping"),
        ({"test_report": "two"}, "weeks[0].manual.test_report: expected a number of points"),
        ({"test_report": -1}, "weeks[0].manual.test_report: points must not be negative"),
        ({"test_mask": 1}, "weeks[0].manual.test_mask: also in tests"),
    ],
)
def test_malformed_manual_items(tmp_path, manual, expected):
    data = minimal()
    data["weeks"][0]["manual"] = manual
    assert expected in parse_error(data, tmp_path)


def test_repository_week10_report_is_graded_by_hand():
    week = config.load(REPO).week("10")
    assert week.manual == {"test_lab_report": 1.5}
    assert "test_lab_report" not in week.tests
    assert week.max_score + week.manual_points == 58  # the week's total, as before the report went to a person


def test_manual_items_are_listed_in_the_results_and_never_scored(week01, tmp_path):
    """A hidden test named in ``manual:`` runs for feedback only; an item with no test is listed as well."""
    import dataclasses
    import textwrap

    from autograder import grading
    from tests.helpers import make_submission

    tests = tmp_path / "hidden"
    tests.mkdir()
    (tests / "test_lab_manual.py").write_text(
        textwrap.dedent(
            """
            def test_scored():
                pass


            def test_report(handed_in):
                assert handed_in("report.md") is not None, "report.md is missing"
            """
        )
    )
    week = dataclasses.replace(week01, manual={"test_report": 1.5, "presentation": 2.0})
    submission = make_submission(tmp_path / "alice", week, None)
    report = grading.run_tests(
        week, submission, tests, points={"test_scored": 1}, hidden_paths=grading.hidden_paths(week)
    )
    results = report.to_gradescope()
    assert [t["name"] for t in results["tests"]] == ["test_scored"]
    assert results["score"] == results["max_score"] == 1
    assert [(item.name, item.score, item.max_score, item.passed) for item in report.manual] == [
        ("test_report", 0.0, 0.0, False),
        ("presentation", 0.0, 0.0, True),
    ]
    assert "Graded by hand by the course staff, not part of this score:" in results["output"]
    assert "test_report: graded by hand (1.5 points" in results["output"]
    assert "report.md is missing" in results["output"]
    assert (
        "presentation: graded by hand (2 points, not part of the autograder's score); no automatic check"
        in (results["output"])
    )


# -- forbidden ops ---------------------------------------------------------------


def forbidding() -> dict:
    """``minimal()`` with a third week that uses the second; forbidden ops on the first two."""
    data = minimal()
    data["weeks"][0]["forbidden"] = ["*softmax*"]
    data["weeks"][1]["uses"] = ["01-attention"]
    data["weeks"][1]["forbidden"] = ["*layer_norm*", "*softmax*"]
    data["weeks"][1]["forbidden_from"] = "01-attention"
    data["weeks"].append(
        {
            "id": "03-gpt",
            "title": "GPT",
            "files": ["gpt.py"],
            "uses": ["02-blocks"],
            "forbidden_from": "02-blocks",
            "forbidden": ["*gelu*"],
            "tests": {"test_gpt": 1},
        }
    )
    return data


def test_forbidden_ops_and_inheritance(tmp_path):
    first, second, third = config.parse(forbidding(), tmp_path).weeks
    assert first.forbidden == first.all_forbidden == ("*softmax*",)
    assert second.forbidden == ("*layer_norm*", "*softmax*")
    assert second.all_forbidden == ("*softmax*", "*layer_norm*")  # inherited first, each once
    assert third.forbidden_from == "02-blocks"  # through 02-blocks, 01's ops reach 03 as well
    assert third.all_forbidden == ("*softmax*", "*layer_norm*", "*gelu*")


def test_forbidden_ops_default_to_none(tmp_path):
    for week in config.parse(minimal(), tmp_path).weeks:
        assert week.forbidden == week.all_forbidden == ()
        assert week.forbidden_from is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"forbidden": "*gelu*"}, "weeks[2].forbidden: expected a list of op patterns, got '*gelu*'"),
        ({"forbidden": ["*gelu*", 3]}, "weeks[2].forbidden[1]: expected an op pattern like '*softmax*', got 3"),
        ({"forbidden_from": "04-later"}, "weeks[2].forbidden_from: expected a week this week uses"),
        ({"uses": [], "forbidden_from": "02-blocks"}, "weeks[2].forbidden_from: expected a week this week uses"),
    ],
)
def test_malformed_forbidden_ops(tmp_path, change, expected):
    data = forbidding()
    data["weeks"][2].update(change)
    assert expected in parse_error(data, tmp_path)


# What each week's hidden tests forbade before the lists moved to course.yml (order aside: the check sorts).
ATTENTION = {"*scaled_dot_product*", "*multi_head_attention*", "*flash_attention*", "*efficient_attention*"}
GPT = ATTENTION | {"*gelu*", "*layer_norm*", "*dropout*"}
REPOSITORY_FORBIDDEN = {
    "00-why-attention": set(),
    "01-attention": {"*softmax*", "*scaled_dot_product*", "*flash_attention*", "*efficient_attention*"},
    "02-multihead": ATTENTION,
    "03-positional": set(),
    "04-block": GPT | {"*rms_norm*", "*group_norm*", "*batch_norm*", "*instance_norm*", "*transformer_encoder*"},
    "05-bert": GPT | {"*rms_norm*", "*transformer_encoder*"},
    "06-gpt2": GPT,
    "07-encdec": ATTENTION
    | {"*transformer_encoder*", "*transformer_decoder*", "*layer_norm*", "*rms_norm*", "*dropout*"},
    "08-kvcache": GPT,
    "09-efficient": ATTENTION | {"*cudnn_attention*"},
    "10-training": GPT,
    "11-applications": set(),
}


def test_repository_forbidden_ops():
    weeks = config.load(REPO).weeks
    assert {week.id: set(week.all_forbidden) for week in weeks} == REPOSITORY_FORBIDDEN
    assert all(len(set(week.all_forbidden)) == len(week.all_forbidden) for week in weeks)


def test_hidden_tests_read_forbidden_ops_from_course_yml():
    from autograder import testing

    assert testing.forbidden("08-kvcache") == list(config.load(REPO).week("08").all_forbidden)
