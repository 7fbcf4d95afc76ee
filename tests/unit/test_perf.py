"""Performance line parsing, multiple_results CSVs, the log error-pattern scan (spec section 7)."""

from __future__ import annotations

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import perf
from ansible_collections.rocm.madengine.plugins.module_utils.perf import ResultsCsvError, ScanConfig

# --- performance line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line,expected",
    [
        ("performance: 12345 samples_per_second", ("12345", "samples_per_second")),
        ("performance: 1.23e-4 x", ("1.23e-4", "x")),
        ("performance: 14164/s samples_per_second", ("14164", "samples_per_second")),
        ("performance: 14164.5/s, m", ("14164.5", "m")),
        ("performance: 100.5, m", ("100.5", "m")),
        ("performance: 123,/s m", ("123", "m")),
        ("performance: 123, /s m", ("123", "m")),
        ("performance: 1234.5 samples/sec", ("1234.5", "samples/sec")),
        ("performance: +123.45 tok/s", ("+123.45", "tok/s")),
        ("performance: .5 ms", (".5", "ms")),
        ("performance: 1.23E+4 items", ("1.23E+4", "items")),
        ("performance: -7 delta", ("-7", "delta")),
        ("performance: 10. x", ("10.", "x")),
        ("performance:\t42\tqps", ("42", "qps")),
        ("some prefix performance: 5 img/s, trailing", ("5", "img/s")),
        ("performance: 5 metric,with,commas", ("5", "metric")),
    ],
)
def test_accepted_forms_keep_the_original_string(line, expected):
    assert perf.parse_performance(line + "\n") == expected


@pytest.mark.parametrize(
    "line", ["performance: 100.5", "performance:5 x", "performance=5", "performance=5 x", "Performance: 5 x"]
)
def test_rejected_forms(line):
    assert perf.parse_performance(line) == ("", "")


def test_first_match_wins():
    text = "setup\nperformance=9 ignored\nperformance: 1 first\nperformance: 2 second\n"
    assert perf.parse_performance(text) == ("1", "first")


def test_huggingface_fallback():
    text = "{'train_runtime': 10.0, 'train_samples_per_second': 12.5, 'train_steps_per_second': 1.0}\n"
    assert perf.parse_performance(text) == ("12.5", "samples_per_second")
    assert perf.parse_performance("train_samples_per_second = 3e2\n") == ("3e2", "samples_per_second")


def test_performance_line_beats_huggingface_fallback():
    text = "train_samples_per_second: 1.0\nperformance: 99 x\n"
    assert perf.parse_performance(text) == ("99", "x")


def test_no_performance():
    assert perf.parse_performance("nothing to see\n") == ("", "")
    assert perf.parse_performance("") == ("", "")


# --- multiple_results --------------------------------------------------------------------------------


def test_read_multiple_results_with_spaced_headers():
    text = "model, temperature, performance, metric\n1, 20.5, 100, samples_per_sec\n2,21,200,samples_per_sec\n\n"
    rows = perf.read_multiple_results(text, "perf_dummy.csv")
    assert rows == [
        {"model": "1", "temperature": "20.5", "performance": "100", "metric": "samples_per_sec"},
        {"model": "2", "temperature": "21", "performance": "200", "metric": "samples_per_sec"},
    ]


def test_read_multiple_results_short_rows_are_padded():
    rows = perf.read_multiple_results("model,performance,metric,extra\na,1,m\n", "r.csv")
    assert rows == [{"model": "a", "performance": "1", "metric": "m", "extra": ""}]


@pytest.mark.parametrize(
    "header,missing",
    [("performance,metric", "model"), ("model,metric", "performance"), ("model,performance", "metric")],
)
def test_read_multiple_results_missing_columns(header, missing):
    with pytest.raises(ResultsCsvError) as info:
        perf.read_multiple_results(header + "\nx,y\n", "perf_dummy.csv")
    assert "perf_dummy.csv" in str(info.value)
    assert missing in str(info.value)


def test_read_multiple_results_without_performance_values():
    with pytest.raises(ResultsCsvError) as info:
        perf.read_multiple_results("model,performance,metric\na, ,m\nb,,m\n", "r.csv")
    assert "performance" in str(info.value)


def test_read_multiple_results_empty():
    with pytest.raises(ResultsCsvError) as info:
        perf.read_multiple_results("", "r.csv")
    assert "empty" in str(info.value)


def test_read_multiple_results_some_blank_values_are_ok():
    rows = perf.read_multiple_results("model,performance,metric\na,,m\nb,2,m\n", "r.csv")
    assert [r["performance"] for r in rows] == ["", "2"]


# --- error-pattern scan ------------------------------------------------------------------------------


def scan(text, **settings):
    model = settings.pop("model", {})
    return perf.find_error_pattern(text, ScanConfig.from_settings(model, settings))


@pytest.mark.parametrize("pattern", perf.DEFAULT_ERROR_PATTERNS)
def test_default_patterns(pattern):
    assert scan(f"line before\nprefix {pattern} suffix\n") == pattern


def test_default_pattern_list_and_order():
    assert perf.DEFAULT_ERROR_PATTERNS[:4] == (
        "OutOfMemoryError",
        "HIP out of memory",
        "CUDA out of memory",
        "RuntimeError:",
    )
    assert len(perf.DEFAULT_ERROR_PATTERNS) == 13
    # patterns are tried in order, not lines: FAILED (later in the list) loses to RuntimeError:
    assert scan("FAILED test\nRuntimeError: x\n") == "RuntimeError:"


def test_clean_log():
    assert scan("performance: 5 x\nall good\nRuntimeError without colon\n") is None


def test_patterns_are_case_sensitive_literals():
    assert scan("runtimeerror: lower\nfailed\n") is None
    assert scan("failed (exitcode: 1)\n") == "failed (exitcode:"


@pytest.mark.parametrize(
    "line",
    [
        "FutureWarning: something ValueError: deprecated",
        "Failed to establish connection to the metrics exporter agent Exception: x",
        "rpd_tracer: RuntimeError: harmless",
        "E20240101 12:00 generateRocpd.cpp:10] Exception: x",
        "W20240101 simple_timer.cpp FAILED",
        "[rocprofv3] FAILED to something",
    ],
)
def test_builtin_benign_lines_are_skipped(line):
    assert scan(line + "\n") is None


def test_benign_regex_is_anchored_at_line_start():
    assert scan("x E20240101 generateRocpd.cpp Exception: y\n") == "Exception:"


def test_user_benign_substrings_from_model_and_context_are_concatenated():
    text = "known issue A RuntimeError: a\nknown issue B ValueError: b\n"
    assert scan(text) == "RuntimeError:"
    assert scan(text, model={"log_error_benign_patterns": ["known issue A"]}) == "ValueError:"
    assert (
        scan(
            text,
            model={"log_error_benign_patterns": ["known issue A"]},
            log_error_benign_patterns=["known issue B"],
        )
        is None
    )


def test_benign_patterns_are_literal_not_regex():
    assert scan("a.b RuntimeError: x\n", log_error_benign_patterns=["a.b"]) is None
    assert scan("axb RuntimeError: x\n", log_error_benign_patterns=["a.b"]) == "RuntimeError:"


def test_grep_self_reference_is_skipped():
    text = "> grep -q 'RuntimeError:' run.log && exit 1\nFound error pattern 'FAILED' in logs\n"
    assert scan(text) is None
    assert scan(text + "RuntimeError: real\n") == "RuntimeError:"


def test_disabled_scan():
    text = "Traceback (most recent call last)\n"
    assert scan(text, log_error_pattern_scan=False) is None
    assert scan(text, model={"log_error_pattern_scan": "off"}) is None
    assert scan(text, model={"log_error_pattern_scan": False}, log_error_pattern_scan="yes") == (
        "Traceback (most recent call last)"
    )


def test_context_patterns_replace_defaults():
    text = "RuntimeError: x\nMY_CUSTOM_ERR happened\n"
    assert scan(text, log_error_patterns=["MY_CUSTOM_ERR"]) == "MY_CUSTOM_ERR"
    assert scan("RuntimeError: x\n", log_error_patterns=["MY_CUSTOM_ERR"]) is None


def test_context_patterns_win_over_model_patterns():
    text = "MODEL_ERR\nCTX_ERR\n"
    assert scan(text, model={"log_error_patterns": ["MODEL_ERR"]}) == "MODEL_ERR"
    assert scan(text, model={"log_error_patterns": ["MODEL_ERR"]}, log_error_patterns=["CTX_ERR"]) == "CTX_ERR"


def test_custom_pattern_with_regex_characters_is_literal():
    assert scan("err (code) [1]\n", log_error_patterns=["(code) [1]"]) == "(code) [1]"
    assert scan("grep -q '(code) [1]' f\n", log_error_patterns=["(code) [1]"]) is None


def test_scan_config_defaults():
    config = ScanConfig.from_settings({}, {})
    assert config.enabled is True
    assert config.patterns == perf.DEFAULT_ERROR_PATTERNS
    assert config.benign == ()


@pytest.mark.parametrize(
    "value,expected",
    [
        (True, True),
        (False, False),
        (0, False),
        (2, True),
        (0.0, False),
        (-1, True),
        ("0", False),
        ("false", False),
        ("No", False),
        (" OFF ", False),
        ("", False),
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("maybe", True),
        (None, True),
        ([], True),
    ],
)
def test_coerce_scan_flag(value, expected):
    assert perf.coerce_scan_flag(value) is expected


def test_coerce_scan_flag_default_applies_only_to_unrecognised():
    assert perf.coerce_scan_flag(None, default=False) is False
    assert perf.coerce_scan_flag("maybe", default=False) is False
    assert perf.coerce_scan_flag("on", default=False) is True


# --- small helpers -----------------------------------------------------------------------------------


def test_join_list_and_first_nonempty_and_tail():
    assert perf.join_list(["a", "b", 3]) == "a,b,3"
    assert perf.join_list("a, b") == "a, b"
    assert perf.join_list(None) == ""
    assert perf.first_nonempty([None, "", "x", "y"]) == "x"
    assert perf.first_nonempty([]) == ""
    assert perf.tail("\n".join(str(i) for i in range(30)), 3) == "27\n28\n29"


def test_read_multiple_results_with_utf8_bom():
    rows = perf.read_multiple_results("\ufeffmodel,performance,metric\n1,2,m\n", "r.csv")
    assert rows == [{"model": "1", "performance": "2", "metric": "m"}]
