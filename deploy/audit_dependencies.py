"""Known vulnerabilities in what is installed in the project's virtualenv, by pip-audit against
PyPI's vulnerability data: fails when one has a fixed release to move to.

Run by deploy/test.sh with the virtualenv's Python. The project itself is installed editable and
is not on PyPI: it is skipped. A vulnerability without a fixed release is shown, not failed on.
When PyPI's per-release JSON API does not answer (no network, or a mirror or proxy that serves
only the package index), it says that nothing was audited and does not fail the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 600
PIP_AUDIT = [
    sys.executable,
    "-m",
    "pip_audit",
    "--local",
    "--skip-editable",
    "--progress-spinner",
    "off",
    "--desc",
    "off",
    "--format",
    "json",
]


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "pip-audit.json"
        try:
            run = subprocess.run(  # noqa: S603 - pip-audit of this interpreter, fixed arguments
                [*PIP_AUDIT, "--output", str(report_path)],
                capture_output=True,
                text=True,
                check=False,
                timeout=TIMEOUT_SECONDS,
            )
            output = run.stderr or run.stdout
        except subprocess.TimeoutExpired:
            output = f"no answer within {TIMEOUT_SECONDS} s"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is None:
        problem = output.strip().splitlines()[-3:]
        lines = [
            "dependency audit: NOT AUDITED - pip-audit could not query PyPI's vulnerability API "
            "(offline?); nothing was checked.",
            *(f"  {line}" for line in problem),
        ]
        status = 0
    else:
        status, lines = judge(report)
    print("\n".join(lines), file=sys.stderr if status else sys.stdout)
    return status


def judge(report: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit status (1: a vulnerability with a fix is installed) and what to tell, for a
    pip-audit JSON report."""
    dependencies: list[dict[str, Any]] = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [d for d in dependencies if "skip_reason" in d and "editable" not in d["skip_reason"]]
    if not audited:
        example = skipped[0]["skip_reason"] if skipped else "no packages listed"
        return 0, [
            f"dependency audit: NOT AUDITED - PyPI's vulnerability API answered for none of the "
            f"{len(skipped)} installed packages (e.g. {example}); nothing was checked. "
            "Run it where https://pypi.org/pypi/<name>/<version>/json is reachable.",
        ]
    lines = [f"dependency audit: {len(audited)} installed packages checked against PyPI"]
    if skipped:
        names = ", ".join(sorted(d["name"] for d in skipped))
        lines.append(f"  not audited (not found on PyPI): {names}")
    fixable = []
    for dependency in audited:
        for vulnerability in dependency.get("vulns", []):
            ids = " / ".join([vulnerability["id"], *vulnerability.get("aliases", [])])
            where = f"{dependency['name']} {dependency['version']}: {ids}"
            if vulnerability.get("fix_versions"):
                fixable.append(f"  {where}, fixed in {', '.join(vulnerability['fix_versions'])}")
            else:
                lines.append(f"  note: {where} has no fixed release yet")
    if fixable:
        lines.append("VULNERABLE: raise these minimum versions in pyproject.toml (or upgrade):")
        return 1, lines + fixable
    lines.append("  no known vulnerability with a fix available")
    return 0, lines


if __name__ == "__main__":
    sys.exit(main())
