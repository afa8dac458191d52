#!/usr/bin/env python3
"""Copies the golden files the tests read from the oracle into tests/data/.

    python3 tools/copy-test-data.py ORACLE_DIR

ORACLE_DIR is the oracle folder (it holds golden/manifest.json and layers/manifest.json). The tests read only
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

# Whole official modules: every module, generator, weighting and option at least once.
LAYER_CASES = [
    "lara1d_noparam_mis-opt_n6_C8",       # n < C: every token its own landmark
    "lara1d_noparam_mis-bh_n50_C8",       # uneven segments
    "lara1d_noparam_mis-biased_n16_C8",
    "lara1d_noparam_misopt_a2_n50_C8",    # alpha_coeff = 2
    "lara1d_noparam_antithetic_n50_C8",
    "lara1d_noparam_masked_n50_C8",       # key_padding_mask
    "lara1d_nobias_n50_C8",               # qkv_bias = False
    "lara1d_adaptive_mis-opt_n50_C8",
    "lara2d_pool_light_H5W7_C9",          # uneven grid: overlapping cells
    "lara2d_pool_dense_H6W6_C9",
    "lara2d_no-param-pool_light_H5W7_C9",
    "lara2d_pool-mixed_light_H6W6_C9",
    "lara2d_pool-vmixed_light_H5W7_C9",
    "softmax_masked_n50",
    "ra_nsm1_n50",
    "ra_ns0_n50",
    "kernelized_favorp_n50_S16",
    "kernelized_fourier_n50_S16",
]


def copy_subset(source: Path, dest: Path, ids: list, see: str) -> None:
    manifest = json.loads((source / "manifest.json").read_text())
    cases = [c for c in manifest["cases"] if c["id"] in ids]
    missing = set(ids) - {c["id"] for c in cases}
    if missing:
        sys.exit(f"cases not in the manifest: {sorted(missing)}")
    if dest.exists():
        shutil.rmtree(dest)
    for case in cases:
        shutil.copytree(source / case["dir"], dest / case["dir"])
    manifest["cases"] = cases
    manifest["see"] = see
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = Path(__file__).resolve().parent.parent
    oracle, data = Path(sys.argv[1]), root / "tests" / "data"
    copy_subset(oracle / "golden", data / "golden", GOLDEN_CASES,
                "FORMULAS.md of the oracle; a subset of its golden manifest")
    copy_subset(oracle / "layers", data / "layers", LAYER_CASES,
                "FORMULAS.md (h) of the oracle; a subset of its layer manifest")
