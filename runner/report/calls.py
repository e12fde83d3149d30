"""Pure: how each reader probe asks its library for an archive, taken from the probe's own code.

A probe marks the lines that make the call with a trailing ``# call: PROBE-ID ...`` (``// call: ...`` in
JavaScript). The snippet of a probe is its marked statements in file order, with the archive's path shown as
``data.zip``: the text the page shows is the code that ran, so the two cannot drift. Python statements go
through the AST (the archive's variable becomes the literal, ``c.file_url(...)`` the expression it stands
for, adjacent string literals are joined); a ``return X`` shows as ``X``; a compound statement (``with``)
shows its first line only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

ARCHIVE = "data.zip"
_MARK = re.compile(r"(?:#|//)\s*call:\s*(?P<ids>[A-Za-z0-9_. @-]+?)\s*$")


def marked_lines(text: str) -> dict[int, tuple[str, ...]]:
    """1-based line number -> the probe ids its ``call:`` comment names."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        found = _MARK.search(line)
        if found:
            out[n] = tuple(found.group("ids").split())
    return out


class _Show(ast.NodeTransformer):
    """The archive as the reader of the page would write it."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(ARCHIVE) if node.id == "archive" else node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if isinstance(node.slice, ast.Constant) and node.slice.value == "archive":
            return ast.Constant(ARCHIVE)  # args["archive"]
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "file_url" and len(node.args) == 1:
            # _common.file_url: "file://" + os.path.abspath(path)
            call = ast.Call(
                func=ast.Attribute(value=ast.Attribute(value=ast.Name("os"), attr="path"), attr="abspath"),
                args=node.args,
                keywords=[],
            )
            return ast.BinOp(left=ast.Constant("file://"), op=ast.Add(), right=call)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        left, right = node.left, node.right
        if isinstance(node.op, ast.Add) and isinstance(left, ast.Constant) and isinstance(left.value, str):
            if isinstance(right, ast.Constant) and isinstance(right.value, str):
                return ast.Constant(left.value + right.value)
            if isinstance(right, ast.BinOp) and isinstance(right.op, ast.Add):
                inner = right.left
                if isinstance(inner, ast.Constant) and isinstance(inner.value, str):  # "a" + ("b" + x)
                    return ast.BinOp(left=ast.Constant(left.value + inner.value), op=ast.Add(), right=right.right)
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        """``x, seconds = c.timed(lambda: CALL)`` (the probe's stopwatch) shows as ``x = CALL``."""
        node = self.generic_visit(node)  # type: ignore[assignment]
        value, target = node.value, node.targets[0]
        timed = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "timed"
        if timed and isinstance(value, ast.Call) and value.args and isinstance(value.args[0], ast.Lambda):
            first = target.elts[0] if isinstance(target, ast.Tuple) else target
            return ast.Assign(targets=[first], value=value.args[0].body)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        values: list[ast.expr] = []
        for part in node.values:  # f"{'file://' + x}" -> f"file://{x}"
            inner = part.value if isinstance(part, ast.FormattedValue) else None
            if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Add) and isinstance(inner.left, ast.Constant):
                values += [ast.Constant(str(inner.left.value)), ast.FormattedValue(inner.right, -1, None)]
            else:
                values.append(part)
        parts: list[ast.expr] = []
        for part in values:
            plain = isinstance(part, ast.FormattedValue) and part.conversion == -1 and part.format_spec is None
            if plain and isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Constant):
                part = ast.Constant(str(part.value.value))  # f"{'data.zip'}" -> "data.zip"
            if parts and isinstance(part, ast.Constant) and isinstance(parts[-1], ast.Constant):
                parts[-1] = ast.Constant(str(parts[-1].value) + str(part.value))
            else:
                parts.append(part)
        if len(parts) == 1 and isinstance(parts[0], ast.Constant):
            return parts[0]
        node.values = parts
        return node


_COMPOUND = (ast.With, ast.AsyncWith, ast.For, ast.If, ast.While, ast.Try, ast.FunctionDef, ast.ClassDef)


def _statement_at(tree: ast.AST, line: int) -> ast.stmt | None:
    """The innermost statement a marked line belongs to: a simple statement spanning it (a formatter may put
    the mark on its last line), or a compound statement whose first line it is."""
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        compound = isinstance(node, _COMPOUND)
        inside = node.lineno == line if compound else node.lineno <= line <= (node.end_lineno or node.lineno)
        if inside and (best is None or node.lineno >= best.lineno):
            best = node
    return best


def _python(text: str, lines: Iterable[int]) -> list[str]:
    tree = ast.parse(text)
    out: list[tuple[bool, int, str]] = []
    for line in sorted(set(lines)):
        node = _statement_at(tree, line)
        if node is None:
            raise ValueError(f"line {line} carries a call: mark but belongs to no statement")
        if isinstance(node, _COMPOUND):
            head = text.splitlines()[node.lineno - 1]
            out.append((True, node.lineno, _show_line(_MARK.sub("", head).strip())))
            continue
        statements: list[ast.stmt] = [node]
        if isinstance(node, ast.Return) and node.value is not None:  # return (store, CALL): the calls
            shown = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            statements = [ast.Expr(e) for e in shown if not isinstance(e, (ast.Name, ast.Constant))]
        for statement in statements:
            shown_node = ast.fix_missing_locations(_Show().visit(statement))
            out.append((not isinstance(node, (ast.Import, ast.ImportFrom)), node.lineno, ast.unparse(shown_node)))
    return [text for _, _, text in sorted(dict.fromkeys(out))]  # imports first, then the calls in file order


def _show_line(head: str) -> str:
    """A compound statement's first line, its archive shown (parsed with a body, so the AST can do it)."""
    tree = ast.parse(head + "\n    pass")
    shown = ast.fix_missing_locations(_Show().visit(tree))
    return ast.unparse(shown).splitlines()[0]


def _javascript(text: str, lines: Iterable[int]) -> list[str]:
    source = text.splitlines()
    return [_MARK.sub("", source[n - 1]).strip().replace("args.archive", f'"{ARCHIVE}"') for n in sorted(lines)]


def snippets(text: str, language: str) -> dict[str, str]:
    """probe id -> its snippet, from one probe script's text."""
    by_probe: dict[str, list[int]] = {}
    for n, ids in marked_lines(text).items():
        for probe in ids:
            by_probe.setdefault(probe, []).append(n)
    show = _python if language == "python" else _javascript
    return {probe: "\n".join(show(text, lines)) for probe, lines in by_probe.items()}


def reader_calls(folder: Path, scripts: Mapping[str, str]) -> dict[str, str]:
    """probe id -> snippet, for the probes named in ``scripts`` (probe id -> script file in ``folder``)."""
    found: dict[str, str] = {}
    for script in sorted(set(scripts.values())):
        text = (folder / script).read_text(encoding="utf-8")
        found.update(snippets(text, "python" if script.endswith(".py") else "javascript"))
    #: a probe's call over HTTP is marked ``PROBE@http``: shown beside its call on a file
    return {name: text for name, text in found.items() if name.split("@", 1)[0] in scripts}
