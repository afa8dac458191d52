#!/usr/bin/env python3
"""Copies the golden files the tests read from the oracle into tests/data/.

    python3 tools/copy-test-data.py ORACLE_DIR

ORACLE_DIR is the oracle folder (it holds golden/manifest.json). The tests read only
tests/data/, never the oracle: a clone of the repository is self-contained. The copy keeps a
subset of the cases, chosen to cover every estimator, parameter and shape class (n < C, n = C,
uneven segment splits, d = 8/16/32, single and multi-head, both input distributions) in well
under a megabyte; CI also runs the full manifest through the golden example.
"""
import json
import shutil
import sys
from pathlib import Path

GOLDEN_CASES = [
    "gauss_n7_d8",           # n < C = 8: every token its own landmark; n = 7, C = 4 uneven
    "clustered_n7_d32",
    "clustered_n16_d8",      # n = 2C
    "gauss_n16_d16",
    "gauss_n64_d8",
    "clustered_n100_d8",     # uneven split, 4 x 12 then 4 x 13 rows
    "clustered_h2_n100_d8",  # two heads
]


def copy_golden(oracle: Path, dest: Path) -> None:
    manifest = json.loads((oracle / "golden" / "manifest.json").read_text())
    cases = [c for c in manifest["cases"] if c["id"] in GOLDEN_CASES]
    missing = set(GOLDEN_CASES) - {c["id"] for c in cases}
    if missing:
        sys.exit(f"cases not in the manifest: {sorted(missing)}")
    if dest.exists():
        shutil.rmtree(dest)
    for case in cases:
        shutil.copytree(oracle / "golden" / case["dir"], dest / case["dir"])
    manifest["cases"] = cases
    manifest["see"] = "FORMULAS.md of the oracle; a subset of its golden manifest"
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = Path(__file__).resolve().parent.parent
    copy_golden(Path(sys.argv[1]), root / "tests" / "data" / "golden")
