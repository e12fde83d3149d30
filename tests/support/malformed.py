"""A corpus of malformed matrix files (name, content, the line the error names, words it must contain), for
the tests that refuse them and for bench/malformed.py, which times the refusals."""

from __future__ import annotations

from runner.matrix.load import MAX_MATRIX_BYTES

GOOD = 'version: 1\nenvironments:\n  - base: debian:bookworm\n    channel: pip\n    packages: ["zarr==3.1.6"]\n'
ENV = '  - {base: "debian:bookworm", channel: pip, packages: ["zarr==3.1.6"]}\n'


def bomb(levels: int = 9) -> str:
    """The classic YAML alias bomb ("billion laughs"): 600 bytes that expand to 9^9 strings."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


#: (name, file content, line the error names or None, words the error must contain)
CORPUS: list[tuple[str, bytes, int | None, str]] = [
    ("empty", b"", None, "(top level)"),
    ("nul byte", GOOD.encode().replace(b"channel", b"chan\0nel"), 4, "NUL byte"),
    ("nul at start", b"\0" + GOOD.encode(), 1, "NUL byte"),
    ("latin-1", GOOD.encode().replace(b"pip", b"p\xe9p"), 4, "not UTF-8"),
    ("utf-16", GOOD.encode("utf-16"), 1, "not UTF-8"),
    ("control character", GOOD.encode().replace(b"pip", b"p\x07p"), 4, "character #x0007"),
    ("alias bomb", bomb().encode(), 2, "aliases are not allowed"),
    ("self-referencing alias", b"version: 1\nenvironments: &e [*e]\n", 2, "aliases are not allowed"),
    ("alias in environments", (GOOD + "  - *x\n").encode(), 6, "aliases are not allowed"),
    ("5000 nested brackets", b"version: " + b"[" * 5000 + b"]" * 5000 + b"\n", 1, "nested more than"),
    ("deep mapping", "a:\n".join("  " * i for i in range(60)).encode(), None, "nested more than"),
    ("too large", b"version: 1\n#" + b"x" * MAX_MATRIX_BYTES + b"\n", None, "larger than"),
    ("not YAML", b"version: 1\nenvironments: [\n", 3, "not valid YAML"),
    ("tab indentation", GOOD.replace("    channel", "\tchannel").encode(), 4, "not valid YAML"),
    ("duplicate key", (GOOD + "version: 1\n").encode(), 6, "duplicate key 'version'"),
    ("list at top", b"- 1\n- 2\n", None, "is not of type 'object'"),
    ("scalar at top", b"hello\n", None, "is not of type 'object'"),
    ("unknown top-level key", (GOOD + "colour: blue\n").encode(), None, "colour"),
    ("no environments", b"version: 1\n", None, "'environments' is a required property"),
    ("wrong version", GOOD.replace("version: 1", "version: 7").encode(), 1, "version"),
    ("python tag", b"version: !!python/object:os.system 1\nenvironments: []\n", 1, "not valid YAML"),
    ("mapping as key", b"version: 1\n? [a, b]\n: 1\nenvironments: []\n", 2, "a key must be a string"),
    ("channel not allowed", GOOD.replace("channel: pip", "channel: conda").encode(), 4, "'conda' is not one of"),
    ("shell in a requirement", GOOD.replace("zarr==3.1.6", "zarr; rm -rf /").encode(), 5, "PEP 508"),
    ("url requirement", GOOD.replace("zarr==3.1.6", "zarr @ https://example.com/z.whl").encode(), 5, "zarr"),
    ("bad base", GOOD.replace("debian:bookworm", "Debian Bookworm!").encode(), 3, "base"),
    ("packages not a list", GOOD.replace('["zarr==3.1.6"]', '"zarr==3.1.6"').encode(), 5, "is not of type 'array'"),
    ("negative timeout", ("version: 1\nsettings: {probe_timeout: -1}\nenvironments:\n" + ENV).encode(), 2, "timeout"),
    ("unknown fixture", ("version: 1\nfixtures: [nope]\nenvironments:\n" + ENV).encode(), 2, "unknown fixture 'nope'"),
    ("undefined axis", GOOD.replace("zarr==3.1.6", "zarr=={zarr}").encode(), 5, "{zarr}"),
    (
        "huge matrix axis",
        (
            "version: 1\nenvironments:\n  - base: debian:bookworm\n    channel: pip\n"
            '    packages: ["zarr=={z}"]\n    matrix: {z: [' + ",".join(f'"{i}"' for i in range(5000)) + "]}\n"
        ).encode(),
        None,
        "matrix",
    ),
    (
        "debian name with shell",
        b'version: 1\nenvironments:\n  - {base: debian:trixie, channel: apt, packages: ["python3-zarr; reboot"]}\n',
        3,
        "Debian package name",
    ),
]
