"""The real-data helper (tests/conftest.py): with the samples missing, a test skips with the reason
locally, and fails in CI (`.ci/run` sets LLAMAPIPE_REQUIRE_REALDATA), where a skip would hide that no
real-format test ran."""

from __future__ import annotations

import pytest

from tests.conftest import REALDATA, REQUIRE_REALDATA, realdata_candidates, require_realdata


def test_missing_samples_skip_with_the_reason_locally(tmp_path):
    missing = tmp_path / "no-realdata"
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_realdata(environ={REALDATA: str(missing)}, default=tmp_path / "no-shared")
    assert "real-data samples not found" in str(skipped.value)
    assert str(missing) in str(skipped.value) and str(tmp_path / "no-shared") in str(skipped.value)


def test_missing_samples_fail_when_required(tmp_path):
    environ = {REALDATA: str(tmp_path / "no-realdata"), REQUIRE_REALDATA: "1"}
    with pytest.raises(pytest.fail.Exception) as failed:
        require_realdata(environ=environ, default=tmp_path / "no-shared")
    assert "real-data samples not found" in str(failed.value)
    assert f"{REQUIRE_REALDATA} is set" in str(failed.value)


def test_require_set_to_0_or_empty_still_skips(tmp_path):
    for value in ("", "0"):
        with pytest.raises(pytest.skip.Exception):
            require_realdata(environ={REQUIRE_REALDATA: value}, default=tmp_path / "no-shared")


def test_found_samples_are_returned_either_way(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    for environ in ({}, {REQUIRE_REALDATA: "1"}, {REALDATA: str(tmp_path / "gone"), REQUIRE_REALDATA: "1"}):
        assert require_realdata(environ=environ, default=shared) == shared
    named = tmp_path / "named"
    named.mkdir()
    assert require_realdata(environ={REALDATA: str(named)}, default=shared) == named
    assert realdata_candidates({REALDATA: str(named)}, shared) == [named, shared]


def test_ci_requires_the_samples():
    from tests.conftest import REPO

    script = (REPO / ".ci" / "run").read_text()
    assert f"export {REQUIRE_REALDATA}=1" in script
    assert script.index(f"export {REQUIRE_REALDATA}=1") < script.index("make test")
