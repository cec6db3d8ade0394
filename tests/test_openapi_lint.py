"""openapi.yaml through two widely used OpenAPI linters with their recommended rule sets: Redocly CLI
(`redocly lint`, ruleset `recommended`) and Spectral (`spectral:oas`), pinned with a lock file in
tests/openapi_lint. Neither may report an error (warnings are allowed). Skipped, saying why, where node
and npm are missing or the locked packages cannot be installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LINT_DIR = Path(__file__).resolve().parent / "openapi_lint"
SPEC = LINT_DIR.parent.parent / "openapi.yaml"
BIN = LINT_DIR / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def linters() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the OpenAPI linters")
    if not (BIN / "redocly").exists() or not (BIN / "spectral").exists():
        installed = subprocess.run(
            ["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"],
            cwd=LINT_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm ci could not install the linters: {installed.stderr.strip()[-500:]}")
    return BIN


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=LINT_DIR, capture_output=True, text=True, timeout=300)


def test_redocly_recommended_finds_no_error(linters: Path) -> None:
    result = run([str(linters / "redocly"), "lint", "--extends=recommended", "--format=stylish", str(SPEC)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " error " not in result.stdout, result.stdout


def test_spectral_oas_finds_no_error(linters: Path) -> None:
    ruleset = LINT_DIR / ".spectral.yaml"
    result = run(
        [str(linters / "spectral"), "lint", "--ruleset", str(ruleset), "--fail-severity=error", str(SPEC)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " error " not in result.stdout, result.stdout
