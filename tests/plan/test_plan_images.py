from __future__ import annotations

import pytest

from runner import probes
from runner.engines.images import content_hash, image_plan, image_tag
from runner.errors import ConfigError, NothingSelectedError
from runner.matrix.fixtures import catalog
from runner.matrix.load import parse_matrix
from runner.plan.planner import Archive, describe, make_plan, read_tasks

MATRIX = """\
version: 1
fixtures: [int32-random, sharded]
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={zarr}"]
    matrix: {zarr: ["2.18.7", "3.1.6"]}
  - base: debian:trixie
    channel: apt
    packages: [python3-gdal]
"""


def matrix(text: str = MATRIX):  # type: ignore[no-untyped-def]
    return parse_matrix(text, "m.yaml", catalog())


def test_plan_selects_probes_by_declared_library_and_pin() -> None:
    plan = make_plan(matrix())
    zarr2, zarr3, gdal = plan.environments
    # the pin 2.18.7 rules the format-3 writers out
    assert [p.id for p in zarr2.writers] == ["zarr-v2", "zarr-zipdir-v2"]
    assert [p.id for p in zarr3.writers] == ["zarr-v2", "zarr-v3", "zarr-zipdir-v2", "zarr-zipdir-v3"]
    assert [p.id for p in zarr3.readers] == ["zarr-zipstore", "zarr-fsspec"]
    assert [p.id for p in gdal.readers] == ["gdal-multidim", "gdal-classic"] and gdal.writers == ()
    assert len(plan.writes) == (2 + 4) * 2
    skipped = {(w.env, w.probe.id) for w in plan.writes if w.skip_reason}
    assert skipped == {
        ("zarr-2.18.7-pip-py3.11", "zarr-v2"),
        ("zarr-2.18.7-pip-py3.11", "zarr-zipdir-v2"),
        ("zarr-3.1.6-pip-py3.11", "zarr-v2"),
        ("zarr-3.1.6-pip-py3.11", "zarr-zipdir-v2"),
    }
    reason = next(w.skip_reason for w in plan.writes if w.skip_reason)
    assert reason == "the fixture needs Zarr format 3 (the sharding codec)"
    assert plan.bases == ("debian:bookworm", "debian:trixie")


def test_unpinned_library_keeps_every_probe_and_other_pins_count() -> None:
    assert len(probes.applicable(probes.WRITERS, {"zarr": None})) == 4
    xarray_on_zarr2 = probes.applicable(probes.WRITERS, {"xarray": "2024.11.0", "zarr": "2.18.7"})
    assert [p.id for p in xarray_on_zarr2 if p.library == "xarray"] == ["xarray-v2"]


def test_probe_globs_narrow_an_environment() -> None:
    text = MATRIX.replace("    packages: [python3-gdal]", "    packages: [python3-gdal]\n    probes: [gdal-multi*]")
    assert [p.id for p in make_plan(matrix(text)).environments[2].readers] == ["gdal-multidim"]
    with pytest.raises(ConfigError, match=r"environments\[1\]\.probes\[0\]: 'nope\*' matches no probe"):
        matrix(text.replace("gdal-multi*", "nope*"))


def test_only_filters_by_glob_and_reports_nothing_selected() -> None:
    plan = make_plan(matrix(), ["zarr-3*"])
    assert [e.slug for e in plan.environments] == ["zarr-3.1.6-pip-py3.11"]
    with pytest.raises(NothingSelectedError, match=r"Known slugs: zarr-2\.18\.7-pip-py3\.11"):
        make_plan(matrix(), ["nope*"])


def test_read_tasks_cross_every_reader_with_every_archive() -> None:
    plan = make_plan(matrix())
    archives = [
        Archive(
            id=f"a{i}",
            path=f"x/{i}.zip",
            fixture="int32-random",
            arrays=("data",),
            zarr_format=2,
            writer_env="w",
            writer_probe="zarr-v2",
        )
        for i in range(3)
    ]
    tasks = read_tasks(plan.environments[1], archives)
    assert len(tasks) == 2 * 3
    assert len({t.id for t in tasks}) == 6
    assert tasks[0].cell_id == "w.zarr-v2--zarr-3.1.6-pip-py3.11.zarr-zipstore--int32-random"


def test_describe_mentions_every_environment_and_the_cell_bound() -> None:
    text = describe(make_plan(matrix()))
    assert "zarr-2.18.7-pip-py3.11" in text and "python3-gdal-apt-trixie" in text
    assert "12 archive(s) to write" in text


def test_content_hash_is_stable_and_sensitive() -> None:
    envs = matrix().environments
    assert content_hash(envs[0]) == content_hash(matrix().environments[0])
    assert content_hash(envs[0]) != content_hash(envs[1])
    assert image_tag(envs[0]).startswith("zipstore-matrix/env:zarr-2.18.7-pip-py3.11-")


def test_ca_bundle_and_base_location_do_not_change_the_hash() -> None:
    env = matrix().environments[0]
    with_ca = image_plan(env, b"-----BEGIN CERTIFICATE-----", base_ref="zipstore-matrix/debian:bookworm")
    without = image_plan(env)
    assert with_ca.tag == without.tag
    assert "COPY ca-bundle.crt" in with_ca.dockerfile and "ca-bundle.crt" in with_ca.files
    assert "COPY ca-bundle.crt" not in without.dockerfile
    assert with_ca.dockerfile.splitlines()[1] == "FROM zipstore-matrix/debian:bookworm"


def test_dockerfile_quotes_every_requirement() -> None:
    text = image_plan(
        matrix(MATRIX.replace('"zarr=={zarr}"', '"zarr>={zarr},<4"]\n    name: "z{zarr}"  #')).environments[0]
    ).dockerfile
    assert "--only-binary=:all: 'zarr<4,>=2.18.7'" in text or "'zarr>=2.18.7,<4'" in text
    apt = image_plan(matrix().environments[2]).dockerfile
    assert "apt-get install -y --no-install-recommends python3 python3-venv python3-gdal" in apt
    assert "--system-site-packages" in apt


def test_combinations_with_one_slug_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"two combinations of the matrix produce the slug 'zarr-pip-py3\.11'"):
        matrix(MATRIX.replace('"zarr=={zarr}"', '"zarr>={zarr}"'))


def test_a_costly_fixture_is_written_only_by_the_writers_the_matrix_names() -> None:
    base = MATRIX.replace("fixtures: [int32-random, sharded]", "fixtures: [int32-random, many-chunks]")
    unnamed = make_plan(matrix(base))
    assert {w.fixture.name for w in unnamed.writes} == {"int32-random"}
    assert "many-chunks: written by no writer (name its writers in writers_of)" in describe(unnamed)
    named = base.replace("environments:", 'writers_of:\n  many-chunks: ["zarr-3.*.zarr-v3"]\nenvironments:', 1)
    plan = make_plan(matrix(named))
    by = {(w.env, w.probe.id) for w in plan.writes if w.fixture.name == "many-chunks"}
    assert by == {("zarr-3.1.6-pip-py3.11", "zarr-v3")}
    # a cheap fixture named there keeps only those writers too
    narrowed = named.replace('many-chunks: ["zarr-3.*.zarr-v3"]', 'int32-random: ["zarr-2.*.zarr-zip*"]')
    by = {(w.env, w.probe.id) for w in make_plan(matrix(narrowed)).writes if w.fixture.name == "int32-random"}
    assert by == {("zarr-2.18.7-pip-py3.11", "zarr-zipdir-v2")}  # (zarr 2 has no format 3 writer)
