from __future__ import annotations

from typing import Any

from runner.protocol import RECORD_VERSION, ProbeResult
from runner.results.classify import compare, process_outcome
from runner.results.model import Outcome, Status
from tests.support.fake_engine import OK_RUN

EXPECTED: dict[str, Any] = {
    "arrays": {
        "data": {
            "shape": [4, 4],
            "dtype": "<i4",
            "sha256": "a" * 64,
            "chunks": [2, 2],
            "fill_value": 0,
            "attrs": {"units": "m"},
            "dimension_names": ["y", "x"],
        },
        "t": {
            "shape": [3],
            "dtype": "<f4",
            "sha256": "b" * 64,
            "chunks": [3],
            "fill_value": "NaN",
            "attrs": {},
            "nan_count": 1,
        },
    },
    "attrs": {"title": "☃"},
}


def classify_read(run: Any, record: Any, expected: Any) -> Outcome:
    """A reader's verdict as the host reaches it, for a record in the current protocol."""
    record = None if record is None else {"record_version": RECORD_VERSION, **record}
    return ProbeResult(run=run, record=record).read_verdict(expected)


def observed(**changes: Any) -> dict[str, Any]:
    arrays = {k: dict(v) for k, v in EXPECTED["arrays"].items()}
    for key, value in changes.items():
        path, field = key.split("__")
        arrays[path][field] = value
    return {"status": "ok", "arrays": arrays, "attrs": {"title": "☃"}}


def test_identical_is_a_pass() -> None:
    assert classify_read(OK_RUN, observed(), EXPECTED).status is Status.PASS


def test_reserved_attribute_is_not_a_difference() -> None:
    got = observed(data__attrs={"units": "m", "_ARRAY_DIMENSIONS": ["y", "x"]})
    assert not compare(EXPECTED, got)


def test_value_difference_names_array_hashes_and_nan_hint() -> None:
    outcome = classify_read(OK_RUN, observed(t__sha256="c" * 64, t__nan_count=2), EXPECTED)
    assert outcome.status is Status.MISMATCH
    assert "array 't': values differ, sha256 cccccccccccc… != bbbbbbbbbbbb…" in outcome.reason
    assert "NaN count 2 vs 1" in outcome.reason


def test_every_difference_is_said_and_sorted_into_data_or_metadata() -> None:
    got = observed(
        data__shape=[4, 5],
        data__dtype=">i4",
        data__chunks=[4, 4],
        data__fill_value=-1,
        data__attrs={"units": "km", "extra": 1},
        data__dimension_names=["a", "b"],
    )
    got["attrs"] = {}
    diffs = compare(EXPECTED, got)
    assert diffs.data == [
        "array 'data': shape (4, 5) != expected (4, 4)",
        "array 'data': dtype >i4 != expected <i4",
    ]
    assert diffs.metadata == [
        "array 'data': chunks (4, 4) != expected (2, 2)",
        "array 'data': fill_value -1 != expected 0",
        "array 'data': unexpected attribute 'extra'=1",
        "array 'data': attribute 'units'='km' != expected 'm'",
        "array 'data': dimension names ['a', 'b'] != expected ['y', 'x']",
        "root group: attribute 'title' missing",
    ]


def test_metadata_only_differences_are_a_pass_with_warnings() -> None:
    outcome = classify_read(OK_RUN, observed(data__attrs={}), EXPECTED)
    assert outcome.status is Status.PASS
    assert outcome.warnings == ("metadata: array 'data': attribute 'units' missing",)
    with_data = classify_read(OK_RUN, observed(data__attrs={}, data__sha256="0" * 64), EXPECTED)
    assert with_data.status is Status.MISMATCH and with_data.warnings == outcome.warnings
    assert "attribute 'units' missing" in with_data.detail


def test_nan_fill_values_compare_equal_across_spellings() -> None:
    assert not compare(EXPECTED, observed(t__fill_value=float("nan")))
    assert not compare(EXPECTED, observed(data__fill_value=0.0))


def test_missing_array() -> None:
    got = observed()
    del got["arrays"]["t"]
    assert compare(EXPECTED, got).data == ["array 't': not found by the reader"]


def test_long_mismatch_lists_are_summarised() -> None:
    expected = {"arrays": {f"a{i}": dict(EXPECTED["arrays"]["data"]) for i in range(9)}}
    outcome = classify_read(OK_RUN, {"status": "ok", "arrays": {}}, expected)
    assert outcome.reason.endswith("; and 3 more")
    assert outcome.detail.count("\n") == 8


def test_process_outcomes() -> None:
    assert process_outcome(None, None).status is Status.CRASH  # type: ignore[union-attr]
    timeout = process_outcome({**OK_RUN, "timed_out": True, "seconds": 300}, None)
    assert timeout is not None and timeout.status is Status.TIMEOUT and "300s" in timeout.reason
    oom = process_outcome({**OK_RUN, "exit_code": None, "signal": "SIGKILL", "oom_killed": True}, None)
    assert oom is not None and oom.status is Status.OOM
    segv = process_outcome(
        {
            **OK_RUN,
            "exit_code": None,
            "signal": "SIGSEGV",
            "stderr_tail": "Fatal Python error: Segmentation fault\n",
        },
        None,
    )
    assert segv is not None and segv.status is Status.CRASH
    assert segv.reason == "killed by SIGSEGV: Fatal Python error: Segmentation fault"
    silent = process_outcome({**OK_RUN, "exit_code": 1, "stderr_tail": "ImportError: no numpy"}, None)
    assert silent is not None and silent.reason == "exited 1 without a record: ImportError: no numpy"
    assert process_outcome(OK_RUN, {"status": "ok"}) is None


def test_probe_statuses() -> None:
    unsupported = classify_read(OK_RUN, {"status": "unsupported", "message": "no v3"}, EXPECTED)
    assert (unsupported.status, unsupported.reason) == (Status.UNSUPPORTED, "no v3")
    failed = classify_read(
        OK_RUN,
        {"status": "error", "error_type": "builtins.KeyError", "message": "'x'", "traceback": "Traceback..."},
        EXPECTED,
    )
    assert (failed.status, failed.reason, failed.detail) == (Status.FAIL, "KeyError: 'x'", "Traceback...")
    weird = classify_read(OK_RUN, {"status": "maybe"}, EXPECTED)
    assert weird.status is Status.CRASH


def test_raw_key_readers_are_compared_on_keys_and_bytes_only() -> None:
    expected = {**EXPECTED, "keys": {".zgroup": "1" * 64, "data/.zarray": "2" * 64, "data/0.0": "3" * 64}}
    same = {"status": "ok", "keys": dict(expected["keys"])}
    assert classify_read(OK_RUN, same, expected).status is Status.PASS
    wrong = {"status": "ok", "keys": {".zgroup": "1" * 64, "data/.zarray": "9" * 64, "extra": "0" * 64}}
    diffs = compare(expected, wrong)
    assert diffs.data == [
        "1 key(s) in the archive not listed by the reader, e.g. 'data/0.0'",
        "1 key(s) listed that the archive does not hold, e.g. 'extra'",
        "1 key(s) read with different bytes, e.g. 'data/.zarray'",
    ]


def test_decoded_view_inconsistent_with_cf_masking_is_a_mismatch() -> None:
    got = observed(t__decoded_mismatch="with mask_and_scale=True the values are not the CF masking")
    assert compare(EXPECTED, got).data == ["array 't': with mask_and_scale=True the values are not the CF masking"]


def test_a_reader_that_read_nothing_from_an_archive_without_arrays_does_not_pass() -> None:
    outcome = classify_read(OK_RUN, {"status": "ok", "arrays": {}}, {"arrays": {}})
    assert outcome.status is Status.FAIL and "read no array" in outcome.reason


def test_a_raw_part_read_lists_every_key_and_is_judged_on_the_bytes_it_read() -> None:
    expected = {**EXPECTED, "keys": {".zgroup": "1" * 64, "data/.zarray": "2" * 64, "data/0.0": "3" * 64}}
    listed = {".zgroup": "1" * 64, "data/.zarray": "2" * 64, "data/0.0": None}  # listed, not read
    assert compare(expected, {"keys": listed}).data == []
    assert compare(expected, {"keys": {**listed, "data/.zarray": "9" * 64}}).data == [
        "1 key(s) read with different bytes, e.g. 'data/.zarray'"
    ]
    assert compare(expected, {"keys": {".zgroup": "1" * 64, "data/.zarray": None}}).data == [
        "1 key(s) in the archive not listed by the reader, e.g. 'data/0.0'"
    ]
