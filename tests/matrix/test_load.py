from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.matrix.fixtures import catalog
from runner.matrix.load import load_matrix, parse_matrix

ROOT = Path(__file__).resolve().parent.parent.parent

GOOD = """\
version: 1
settings:
  probe_timeout: 60
environments:
  - base: debian:bookworm
    channel: pip
    packages: ["zarr=={zarr}", "numcodecs=={numcodecs}"]
    matrix:
      zarr: ["2.18.7", "2.18.4"]
      numcodecs: ["0.15.1", "0.16.6"]
    exclude:
      - {zarr: "2.18.4", numcodecs: "0.16.6"}
    include:
      - {zarr: "2.17.2", numcodecs: "0.12.1"}
    name: "zarr-{zarr}-nc{numcodecs}"
  - base: debian:trixie
    channel: apt
    packages: [python3-gdal]
  - base: python:3.12-slim
    channel: pip
    packages: ["zarr>=3"]
"""


def parse(text: str) -> object:
    return parse_matrix(text, "m.yaml", catalog())


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert info.value.exit_code == 2
    return str(info.value)


def test_product_minus_exclude_plus_include() -> None:
    matrix = parse_matrix(GOOD, "m.yaml", catalog())
    slugs = [e.slug for e in matrix.environments]
    assert slugs == [
        "zarr-2.18.7-nc0.15.1",
        "zarr-2.18.7-nc0.16.6",
        "zarr-2.18.4-nc0.15.1",
        "zarr-2.17.2-nc0.12.1",
        "python3-gdal-apt-trixie",
        "zarr-pip-py3.12",
    ]
    first = matrix.environments[0]
    assert first.packages == ("zarr==2.18.7", "numcodecs==0.15.1")
    assert first.python == "3.11"
    assert matrix.environments[4].libraries == frozenset({"gdal"})
    assert matrix.settings.probe_timeout == 60
    assert matrix.environments[0].source is not None and matrix.environments[0].source.line == 5


def test_sha256_tracks_the_text() -> None:
    a = parse_matrix(GOOD, "m.yaml")
    b = parse_matrix(GOOD + "\n# comment\n", "m.yaml")
    assert a.sha256 != b.sha256
    assert a.environments == b.environments


def test_unknown_key_names_path_line_and_allowed_keys() -> None:
    text = GOOD.replace("    channel: apt\n", "    channel: apt\n    pakages: [x]\n")
    message = error_of(text)
    assert "m.yaml:18: environments[1].pakages: unknown key 'pakages' (allowed: base, channel," in message


def test_unquoted_version_gets_a_quoting_hint() -> None:
    message = error_of(GOOD.replace('zarr: ["2.18.7", "2.18.4"]', "zarr: [2.18, 3.10]"))
    assert "m.yaml:9: environments[0].matrix.zarr[0]" in message
    assert "quote it" in message


def test_bad_requirement_is_refused_before_any_shell_sees_it() -> None:
    message = error_of(GOOD.replace('packages: ["zarr>=3"]', 'packages: ["zarr; rm -rf /"]'))
    assert "environments[2].packages[0]" in message
    assert "not a PEP 508 requirement" in message or "shell characters" in message


def test_direct_url_requirement_refused() -> None:
    message = error_of(GOOD.replace('packages: ["zarr>=3"]', 'packages: ["zarr @ https://example.invalid/z.whl"]'))
    assert "direct URL" in message


def test_bad_debian_package_name() -> None:
    message = error_of(GOOD.replace("packages: [python3-gdal]", 'packages: ["python3-gdal && curl x"]'))
    assert "m.yaml:18: environments[1].packages[0]" in message
    assert "not a Debian package name" in message


def test_apt_needs_debian_base() -> None:
    message = error_of(GOOD.replace("base: debian:trixie", "base: python:3.12-slim"))
    assert "channel 'apt' needs a Debian base" in message


def test_undefined_placeholder() -> None:
    message = error_of(GOOD.replace('"numcodecs=={numcodecs}"', '"numcodecs=={numcodec}"'))
    assert "placeholder {numcodec} is not an axis" in message
    assert "environments[0].packages[1]" in message


def test_include_must_give_every_axis() -> None:
    message = error_of(GOOD.replace('- {zarr: "2.17.2", numcodecs: "0.12.1"}', '- {zarr: "2.17.2"}'))
    assert "include must give every axis" in message


def test_duplicate_slugs_are_refused() -> None:
    text = (
        GOOD
        + """  - base: python:3.12-slim
    channel: pip
    packages: ["zarr>=3"]
"""
    )
    message = error_of(text)
    assert "slug 'zarr-pip-py3.12' is also produced by environments[2]" in message


def test_unknown_fixture() -> None:
    message = error_of(GOOD.replace("environments:\n", "fixtures: [int32-random, nope]\nenvironments:\n", 1))
    assert "fixtures[1]: unknown fixture 'nope'" in message


def test_duplicate_key() -> None:
    message = error_of(GOOD.replace("    channel: apt\n", "    channel: apt\n    channel: pip\n"))
    assert "duplicate key 'channel'" in message
    assert "m.yaml:18" in message


def test_yaml_syntax_error_has_a_line() -> None:
    message = error_of("version: 1\nenvironments: [\n")
    assert message.startswith("m.yaml:3: not valid YAML")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read the matrix file"):
        load_matrix("/nonexistent/matrix.yaml")


def test_every_problem_is_listed_at_once() -> None:
    text = GOOD.replace("version: 1", "version: 2").replace("channel: apt", "channel: conda")
    message = error_of(text)
    assert "2 problems" in message
    assert message.index("m.yaml:1:") < message.index("m.yaml:17:")


def test_repository_matrix_is_valid() -> None:
    matrix = load_matrix(ROOT / "matrix.yaml", catalog())
    assert matrix.environments
    assert len({e.slug for e in matrix.environments}) == len(matrix.environments)


def test_an_npm_environment_is_node_on_debian_with_exact_npm_versions() -> None:
    from runner.engines.images import image_plan

    text = """
version: 1
environments:
  - base: debian:trixie
    channel: npm
    packages: ["zarrita@0.7.5", "@zarrita/storage@0.2.0"]
"""
    env = parse_matrix(text, "m.yaml").environments[0]
    assert env.slug == "zarrita-0.7.5-npm-trixie" and env.python == "3.13"
    assert env.pins == {"zarrita": "0.7.5", "zarrita-storage": "0.2.0"}
    dockerfile = image_plan(env, ca_bundle=b"x").dockerfile
    assert "python3 python3-venv nodejs npm" in dockerfile
    assert "NODE_EXTRA_CA_CERTS=/etc/zipstore/ca-bundle.crt npm install --prefix /opt/npm" in dockerfile
    assert "zarrita@0.7.5 @zarrita/storage@0.2.0" in dockerfile
    for bad in ("zarrita@^0.7", "zarrita", "zarrita@latest", "zarrita@0.7.5; rm -rf /"):
        with pytest.raises(ConfigError, match="is not an exact npm package version"):
            parse_matrix(text.replace("zarrita@0.7.5", bad), "m.yaml")
    with pytest.raises(ConfigError, match="channel 'npm' needs a Debian base"):
        parse_matrix(text.replace("debian:trixie", "python:3.13-slim"), "m.yaml")


def test_writers_of_names_known_fixtures_as_env_dot_probe_globs() -> None:
    text = GOOD.replace("environments:\n", 'writers_of:\n  many-chunks: ["zarr-2.18.7-*.zarr-v2"]\nenvironments:\n', 1)
    assert parse(text).writers_of == {"many-chunks": ("zarr-2.18.7-*.zarr-v2",)}  # type: ignore[attr-defined]
    unknown = error_of(text.replace("  many-chunks:", "  many-chunk:"))
    assert "m.yaml:5: writers_of.many-chunk: unknown fixture 'many-chunk'" in unknown
    assert "writers_of.many-chunks[0]" in error_of(text.replace("zarr-2.18.7-*.zarr-v2", "zarr-v2"))
