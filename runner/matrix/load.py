"""Load and validate ``matrix.yaml`` into frozen models.

Every error names the file, the YAML path (``environments[2].packages[0]``) and the line, so a user can
jump straight to it. Nothing taken from the file is ever passed to a shell unchecked: requirements must
parse as PEP 508, versions as PEP 440, Debian package names and image references against their grammars.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import math
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from runner import probes
from runner.channels import Channel, ChannelName, channel
from runner.errors import ConfigError
from runner.matrix.datasets import catalog
from runner.matrix.model import (
    BenchmarkSettings,
    EnvironmentSpec,
    Location,
    Matrix,
    Settings,
    Track,
    Tracked,
    YamlPath,
    debian_suite,
    format_path,
    python_of,
)
from runner.resources import schema_path

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,100}$")
# Docker reference grammar (distribution/reference), restricted to what we need: [host/]name[:tag].
_IMAGE_REF = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)


# --------------------------------------------------------------------------------------------- loading


class _Lines:
    """YAML path -> line number, recorded while composing the document."""

    def __init__(self) -> None:
        self.lines: dict[YamlPath, int] = {}

    def to_python(self, node: yaml.Node, path: YamlPath = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.to_python(key_node, (*path, "<key>"))
                if not isinstance(key, (str, int)):
                    why = f"a key must be a string, not {type(key).__name__}"
                    raise _Problem(path, why, key_node.start_mark.line + 1)
                if key in out:
                    raise _Problem(path, f"duplicate key {key!r}", key_node.start_mark.line + 1)
                out[key] = self.to_python(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.to_python(item, (*path, i)) for i, item in enumerate(node.value)]
        return yaml.SafeLoader.construct_object(_CONSTRUCTOR, node, deep=True)

    def line(self, path: YamlPath) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)


_CONSTRUCTOR = yaml.SafeLoader("")


@dataclass
class _Problem(Exception):
    path: YamlPath
    message: str
    line: int | None = None


#: A matrix file is small, hand-written text: these caps refuse anything else before it is parsed.
MAX_MATRIX_BYTES = 1 << 20
MAX_DEPTH = 32  # nesting of mappings and sequences (the schema needs 5)
MAX_EVENTS = 200_000  # YAML events (nodes and their ends)
MAX_ENVIRONMENTS = 200  # environments one entry's matrix may expand to (each is an image)


def load_matrix(path: str | Path, known_fixtures: Mapping[str, Any] | None = None) -> Matrix:
    """Read, validate and expand a matrix file. Raises ``ConfigError`` listing every problem found."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MATRIX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the matrix file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_MATRIX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_MATRIX_BYTES:,} bytes: not a matrix file")
    return parse_matrix(decode_matrix(raw, str(path)), str(path), known_fixtures)


def decode_matrix(raw: bytes, filename: str) -> str:
    """The file's text: UTF-8 with no NUL byte, else an error naming the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{filename}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    return text


def _prescan(text: str, filename: str) -> None:
    """Refuse what would make composing the document costly before composing it: NUL bytes, aliases
    (a 600-byte alias bomb expands to gigabytes; a self-referencing one never ends), deep nesting and
    sheer size. YAML's event parser is not recursive, so this scan is cheap whatever the input."""
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError(f"{filename}:{text.count(chr(10), 0, nul) + 1}: a NUL byte: not a text file")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MATRIX_BYTES:
        raise ConfigError(f"{filename}: larger than {MAX_MATRIX_BYTES:,} bytes: not a matrix file")
    depth = 0
    for n, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
        line = event.start_mark.line + 1 if event.start_mark else "?"
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                f"{filename}:{line}: YAML alias *{event.anchor}: aliases are not allowed in a matrix file "
                "(write the value out, or use the matrix/include keys)"
            )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{filename}:{line}: nested more than {MAX_DEPTH} levels deep: not a matrix file")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if n > MAX_EVENTS:
            raise ConfigError(f"{filename}:{line}: more than {MAX_EVENTS:,} YAML nodes: not a matrix file")


def parse_matrix(text: str, filename: str, known_fixtures: Mapping[str, Any] | None = None) -> Matrix:
    lines = _Lines()
    try:
        _prescan(text, filename)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = lines.to_python(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{filename}:{mark.line + 1}" if mark else filename
        raise ConfigError(f"{where}: not valid YAML: {exc.problem}") from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{filename}:{line}: not valid YAML: character #x{exc.character:04x} is not allowed") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: not valid YAML: {exc}") from exc
    except _Problem as problem:
        raise ConfigError(f"{filename}:{problem.line}: {format_path(problem.path)}: {problem.message}") from None

    problems = list(_schema_problems(data))
    if not problems and isinstance(data, dict):
        problems = list(_semantic_problems(data, known_fixtures))
    if problems:
        raise ConfigError(_describe(problems, filename, lines))
    assert isinstance(data, dict)  # the schema requires an object

    raw_settings = dict(data.get("settings", {}))
    if "access" in raw_settings:
        raw_settings["access"] = tuple(raw_settings["access"])
    settings = Settings(**raw_settings)
    environments = tuple(_expand_all(data["environments"], filename, lines))
    fixtures = tuple(data["fixtures"]) if "fixtures" in data else None
    return Matrix(
        path=filename,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        settings=settings,
        environments=environments,
        fixtures=fixtures,
        benchmark=_benchmark(data["benchmark"], filename, lines) if "benchmark" in data else None,
        writers_of={name: tuple(globs) for name, globs in data.get("writers_of", {}).items()},
    )


def _benchmark(data: Mapping[str, Any], filename: str, lines: _Lines) -> BenchmarkSettings:
    values = dict(data)
    loader = values.pop("loader", {})
    if "base" in loader:
        values["loader_base"] = loader["base"]
    if "packages" in loader:
        values["loader_packages"] = tuple(loader["packages"])
    if "apt" in loader:
        values["loader_apt"] = tuple(loader["apt"])
    if "datasets" in values:
        values["datasets"] = tuple(values["datasets"])
    mnist = values.get("mnist")
    if mnist is not None:  # relative to the matrix file, like every path a config file names
        path = Path(mnist).expanduser()
        values["mnist"] = str(path if path.is_absolute() else (Path(filename).parent / path).resolve())
        here: YamlPath = ("benchmark", "mnist")
        values["mnist_source"] = Location(file=filename, path=here, line=lines.line(here))
    return BenchmarkSettings(**values)


def _describe(problems: list[_Problem], filename: str, lines: _Lines) -> str:
    rows = []
    unique = {(p.path, p.message): p for p in problems}.values()
    for p in sorted(unique, key=lambda p: p.line or lines.line(p.path) or 0):
        line = p.line or lines.line(p.path)
        where = f"{filename}:{line}" if line else filename
        rows.append(f"  {where}: {format_path(p.path) or '(top level)'}: {p.message}")
    noun = "problem" if len(rows) == 1 else "problems"
    return f"{filename}: {len(rows)} {noun} in the matrix file:\n" + "\n".join(rows)


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return loaded


def _schema_problems(data: Any) -> Iterator[_Problem]:
    validator = jsonschema.Draft202012Validator(_schema())
    for error in validator.iter_errors(data):
        path = tuple(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                yield _Problem((*path, key), f"unknown key {key!r} (allowed: {', '.join(allowed)})")
            continue
        if error.validator == "type" and error.validator_value == "string" and not isinstance(error.instance, str):
            message += "; quote it in the YAML (3.10 unquoted is the number 3.1)"
        yield _Problem(path, message)


# ------------------------------------------------------------------------------------ semantic checks


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _combinations(env: Mapping[str, Any]) -> list[dict[str, str]]:
    """Product of the axes, minus excludes, plus includes (tox/asv style); [{}] when there is no matrix."""
    axes: dict[str, list[str]] = env.get("matrix", {})
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    excludes = env.get("exclude", [])
    combos = [c for c in combos if not any(all(c.get(k) == v for k, v in ex.items()) for ex in excludes)]
    for extra in env.get("include", []):
        if extra not in combos:
            combos.append(dict(extra))
    return combos


def _templated_fields(env: Mapping[str, Any]) -> Iterator[tuple[YamlPath, str]]:
    for key in ("name", "base"):
        if key in env:
            yield (key,), env[key]
    for key in ("packages", "pip"):
        for i, value in enumerate(env.get(key, [])):
            yield (key, i), value


def _semantic_problems(data: Mapping[str, Any], known_fixtures: Mapping[str, Any] | None) -> Iterator[_Problem]:
    if known_fixtures is not None:
        for i, name in enumerate(data.get("fixtures", [])):
            if name not in known_fixtures:
                yield _Problem(("fixtures", i), f"unknown fixture {name!r} (known: {', '.join(known_fixtures)})")
        for name in data.get("writers_of", {}):
            if name not in known_fixtures:
                yield _Problem(("writers_of", name), f"unknown fixture {name!r} (known: {', '.join(known_fixtures)})")
    yield from _benchmark_problems(data.get("benchmark", {}))
    slugs: dict[str, YamlPath] = {}
    for e, env in enumerate(data["environments"]):
        here: YamlPath = ("environments", e)
        axes = set(env.get("matrix", {})) | {k for extra in env.get("include", []) for k in extra}
        for k, ex in enumerate(env.get("exclude", [])):
            for key in sorted(set(ex) - axes):
                yield _Problem((*here, "exclude", k, key), f"{key!r} is not an axis of this environment's matrix")
        problems = _placeholder_problems(env, here, axes)
        size = math.prod(len(values) for values in env.get("matrix", {}).values()) + len(env.get("include", []))
        if size > MAX_ENVIRONMENTS:
            yield _Problem(
                (*here, "matrix"), f"expands to {size:,} environments; one entry may make at most {MAX_ENVIRONMENTS}"
            )
            continue
        for k, extra in enumerate(env.get("include", [])):
            missing = set(env.get("matrix", {})) - set(extra)
            if missing:
                problems.append(
                    _Problem((*here, "include", k), f"include must give every axis; missing {sorted(missing)}")
                )
        for k, glob in enumerate(env.get("probes", [])):
            if not any(fnmatch.fnmatch(probe_id, glob) for probe_id in probes.ALL):
                yield _Problem((*here, "probes", k), f"{glob!r} matches no probe (known: {', '.join(probes.ALL)})")
        needs_debian = channel(env["channel"]).NEEDS_DEBIAN_BASE
        if needs_debian and debian_suite(env["base"]) is None and "{" not in env["base"]:
            yield _Problem((*here, "base"), f"channel {env['channel']!r} needs a Debian base (debian:SUITE)")
        if problems:
            yield from problems
            continue
        for combo in _combinations(env):
            value_problems = list(_check_values(env, combo, here))
            if value_problems:
                yield from value_problems
                continue
            try:
                spec = _expand_one(env, combo, Location(file="", path=here, line=None))
            except _Problem as problem:
                yield problem
                continue
            if spec.slug in slugs:
                other = slugs[spec.slug]
                if other == here:
                    yield _Problem(
                        here,
                        f"two combinations of the matrix produce the slug {spec.slug!r}; "
                        "put the axes in 'name', e.g. name: \"zarr-{zarr}\"",
                    )
                else:
                    yield _Problem(
                        here,
                        f"environment slug {spec.slug!r} is also produced by {format_path(other)}; "
                        "give a distinct 'name'",
                    )
            slugs.setdefault(spec.slug, here)


def _benchmark_problems(bench: Mapping[str, Any]) -> Iterator[_Problem]:
    known = catalog()
    for i, name in enumerate(bench.get("datasets", [])):
        if name not in known:
            yield _Problem(("benchmark", "datasets", i), f"unknown dataset {name!r} (known: {', '.join(known)})")
    loader = bench.get("loader", {})
    if "base" in loader and not _IMAGE_REF.match(loader["base"]):
        yield _Problem(("benchmark", "loader", "base"), f"{loader['base']!r} is not a valid image reference")
    for key, how in (("packages", channel("pip")), ("apt", channel("apt"))):
        for i, value in enumerate(loader.get(key, [])):
            problem = how.problem(value)
            if problem:
                yield _Problem(("benchmark", "loader", key, i), problem)
    if loader.get("apt") and debian_suite(loader.get("base", "debian:bookworm")) is None:
        yield _Problem(("benchmark", "loader", "base"), "loader apt packages need a Debian base (debian:SUITE)")


def _placeholder_problems(env: Mapping[str, Any], here: YamlPath, axes: set[str]) -> list[_Problem]:
    problems = []
    for path, template in _templated_fields(env):
        try:
            names = _placeholders(template)
        except ValueError as exc:
            problems.append(_Problem((*here, *path), f"bad placeholder in {template!r}: {exc}"))
            continue
        for name in sorted(names - axes):
            problems.append(
                _Problem((*here, *path), f"placeholder {{{name}}} is not an axis of this environment's matrix")
            )
    return problems


def _check_values(env: Mapping[str, Any], combo: Mapping[str, str], here: YamlPath) -> Iterator[_Problem]:
    name = env["channel"]
    for axis in sorted(_placeholders(env["base"])):
        if combo.get(axis) in _TRACK_VALUES:
            yield _Problem((*here, "base"), f"{combo[axis]!r} picks a package version, not a base image")
            return
    base = env["base"].format(**combo)
    if not _IMAGE_REF.match(base):
        yield _Problem((*here, "base"), f"{base!r} is not a valid image reference")
    if channel(name).NEEDS_DEBIAN_BASE and debian_suite(base) is None:
        yield _Problem((*here, "base"), f"channel {name!r} needs a Debian base (debian:SUITE), got {base!r}")
    for key, how in (("packages", channel(name)), ("pip", channel("pip"))):
        for i, template in enumerate(env.get(key, [])):
            yield from _check_package(how, template, combo, (*here, key, i))


def _check_package(how: Channel, template: str, combo: Mapping[str, str], path: YamlPath) -> Iterator[_Problem]:
    """One package entry of one channel: a tracked version only where the channel tracks, and the entry as
    the channel's grammar allows."""
    if how.TRACKS:
        try:
            tracked = _tracked(how, template, combo, path)
        except _Problem as bad:
            yield bad
            return
        # a tracked entry is checked as it will be written once resolved (any exact version)
        value = how.pinned(tracked[0], "0.0.0") if tracked else template.format(**combo)
    else:
        used = [combo[n] for n in _placeholders(template) if combo.get(n) in _TRACK_VALUES]
        if used and how.VERSIONS_FROM_SUITE:
            yield _Problem(path, f"{used[0]!r}: a Debian package's version is the suite's; name no version")
            return
        value = template.format(**combo)
    why = how.problem(value)
    if why:
        yield _Problem(path, why)


# --------------------------------------------------------------------------------------------- expanding


def _expand_all(envs: list[dict[str, Any]], filename: str, lines: _Lines) -> Iterator[EnvironmentSpec]:
    for e, env in enumerate(envs):
        path: YamlPath = ("environments", e)
        location = Location(file=filename, path=path, line=lines.line(path))
        for combo in _combinations(env):
            yield _expand_one(env, combo, location)


def _tracked(how: Channel, template: str, combo: Mapping[str, str], path: YamlPath) -> tuple[str, Tracked] | None:
    """``zarr=={zarr}`` (pip) or ``zarrita@{zarrita}`` (npm) with the axis at ``latest`` -> (the entry without
    its version, what to ask the channel's registry); None when no tracked value is used."""
    used = [combo[name] for name in _placeholders(template) if combo.get(name) in _TRACK_VALUES]
    if not used:
        return None
    found = how.tracked(template)
    if found is None or how.TRACKS is None:
        raise _Problem(
            path,
            f"{used[0]!r} stands for a version an index picks: write the entry as "
            f"{how.pinned('NAME', '{axis}')}, not {template!r}",
        )
    package, axis = found
    name = canonicalize_name(Requirement(package).name) if how.TRACKS == "pypi" else package
    return package, Tracked(name=name, track=Track(combo[axis]), registry=how.TRACKS)


#: the values an axis may give for a version an index decides (``suite`` is not one)
_TRACK_VALUES = {Track.LATEST.value, Track.LATEST_PRE.value}


def _packages(
    how: Channel, env: Mapping[str, Any], key: str, combo: Mapping[str, str], here: YamlPath
) -> Iterator[tuple[str, str, Tracked | None]]:
    """(entry as the plan knows it, as the slug shows it, what a registry is asked): a tracked entry is the
    bare package until resolved, and ``name==latest`` (``name@latest``) in a default slug."""
    for i, template in enumerate(env.get(key, [])):
        found = _tracked(how, template, combo, (*here, key, i)) if how.TRACKS else None
        if found is None:
            value = template.format(**combo)
            yield value, value, None
        else:
            package, tracked = found
            yield package, how.pinned(package, str(tracked.track)), tracked


def _expand_one(env: Mapping[str, Any], combo: Mapping[str, str], location: Location) -> EnvironmentSpec:
    base = env["base"].format(**combo)
    name: ChannelName = env["channel"]
    both = list(_packages(channel(name), env, "packages", combo, location.path))
    extra = list(_packages(channel("pip"), env, "pip", combo, location.path))
    packages = tuple(p for p, _, _ in both)
    pip = tuple(p for p, _, _ in extra)
    tracks = tuple(t for _, _, t in both + extra if t is not None)
    python = python_of(base)
    shown_packages = tuple(shown for _, shown, _ in both)
    slug = env["name"].format(**combo) if "name" in env else default_slug(shown_packages, name, base, python)
    if not _SLUG.match(slug):
        raise _Problem((*location.path, "name"), f"slug {slug!r} must be lowercase letters, digits, '.', '_' or '-'")
    return EnvironmentSpec(
        slug=slug,
        base=base,
        channel=name,
        packages=packages,
        pip=pip,
        probes=tuple(env.get("probes", ())),
        python=python,
        source=location,
        tracks=tracks,
    )


def default_slug(packages: tuple[str, ...], name: ChannelName, base: str, python: str | None) -> str:
    """``zarr==2.18.7`` on bookworm via pip -> ``zarr-2.18.7-pip-py3.11``; a tracked version not yet resolved
    is named by its track (``zarr-latest-pip-py3.13``), so the slug stays the same across releases."""
    how = channel(name)
    first, _, track = packages[0].partition("==")
    tracked = how.TRACKS == "pypi" and track in _TRACK_VALUES  # npm's slug head shows NAME-latest itself
    head = f"{how.slug_head(first)}-{track}" if tracked else how.slug_head(packages[0])
    suite = debian_suite(base)
    where = suite if how.NEEDS_DEBIAN_BASE and suite else (f"py{python}" if python else base)
    raw = f"{head}-{name}-{where}".lower()
    return re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-")
