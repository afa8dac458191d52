#!/usr/bin/env python3
"""Export a PyTorch attention layer's state_dict as a folder lara-attn reads.

The folder holds one `<key>.npy` per state_dict entry (float32, C order, NPY v1;
buffers such as KernelizedAttention's `eval_proj` included) and a `config.json`:
`{"module": "LinearRA", "config": {"dim": ..., "num_heads": ..., ...}}`, the
official module's name and constructor arguments (HKUNLP/efficient-attention:
MultiheadAttention, LinearRA, RandomizedAttention, KernelizedAttention).

From Python, where your model class is importable (dependencies: numpy, torch):

    from export_state_dict import export_layer
    model = MyViT(...); model.load_state_dict(torch.load("vit.pt"))
    export_layer(model, "attn3", prefix="blocks.3.attn.")
    # the config is read from model.blocks[3].attn (dim, num_heads, num_landmarks, ...);
    # a class of your own that mirrors an official one: module="LinearRA"; any
    # argument the attributes do not show: config={"num_landmarks": 49}

From a saved state_dict (no model class needed; `--config` gives `num_heads` and
every argument that differs from the official default; `dim` and `qkv_bias` are
read from the tensors):

    python3 tools/export_state_dict.py vit.pt attn3 --prefix blocks.3.attn. \\
        --module LinearRA --config '{"num_heads": 6, "num_landmarks": 49}'

Dropout rates and `fp32` are not exported: the crate has no dropout and runs in
float32. Errors (a prefix with no tensors, an integer tensor such as BatchNorm's
`num_batches_tracked`, a folder holding another layer's files) stop the export
before anything is written.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

MODULES = ("MultiheadAttention", "LinearRA", "RandomizedAttention", "KernelizedAttention")
# Constructor arguments each official module keeps as attributes of the same name.
ATTRIBUTES = {
    "MultiheadAttention": {"dim": int, "num_heads": int},
    "LinearRA": {"num_landmarks": int, "proposal_gen": str, "pool_module_type": str,
                 "mis_type": str, "alpha_coeff": float, "use_antithetics": bool,
                 "use_multisample": bool},
    "RandomizedAttention": {"num_samples": int},
    "KernelizedAttention": {"approx_attn_dim": int, "proj_method": str,
                            "sample_scheme": str, "cos_weighting": bool},
}


def inferred_config(layer, module):
    """The constructor arguments that `layer`'s attributes show, by the official names."""
    names = {**ATTRIBUTES["MultiheadAttention"], **ATTRIBUTES.get(module, {})}
    return {k: cast(getattr(layer, k)) for k, cast in names.items() if hasattr(layer, k)}


def export_layer(source, out_dir, module=None, config=None, prefix=""):
    """Write the tensors of `source` under `prefix` (an nn.Module or a state_dict) to
    `out_dir`/<key>.npy with the prefix stripped, and `out_dir`/config.json.

    `module` defaults to the class name of the layer at `prefix`; `config` is merged over
    what its attributes show. Returns {key: shape} of the tensors written."""
    if prefix and not prefix.endswith("."):
        prefix += "."
    model = source if isinstance(source, torch.nn.Module) else None
    if model is not None:
        source = model.state_dict()
    tensors = {k[len(prefix):]: t for k, t in source.items() if k.startswith(prefix)}
    if not tensors:
        hints = sorted({k[:-len("qkv.weight")] for k in source if k.endswith("qkv.weight")})
        raise ValueError(f"no tensor under prefix {prefix!r}; layers with a qkv.weight "
                         f"are under {hints[:8]}{' ...' if len(hints) > 8 else ''}")
    if "qkv.weight" not in tensors:
        raise ValueError(f"no qkv.weight under prefix {prefix!r}: is it the attention "
                         f"layer's own prefix? keys: {sorted(tensors)[:8]}")
    for key, t in tensors.items():
        if not torch.is_tensor(t) or not t.is_floating_point():
            kind = t.dtype if torch.is_tensor(t) else type(t).__name__
            raise TypeError(f"{prefix}{key}: {kind}, not a floating-point tensor")

    # The submodule at the prefix (e.g. model.blocks[3].attn) carries the config.
    layer = model.get_submodule(prefix[:-1]) if model is not None and prefix else model
    module = module or (type(layer).__name__ if layer is not None else None)
    if module is None:
        raise ValueError("module is required for a state_dict (e.g. 'LinearRA')")
    if module not in MODULES:
        print(f"warning: lara-attn runs {', '.join(MODULES)}, not {module!r}", file=sys.stderr)
    config = {**(inferred_config(layer, module) if layer is not None else {}), **(config or {})}
    # The state_dict itself shows dim and whether qkv has a bias.
    config.setdefault("dim", int(tensors["qkv.weight"].shape[1]))
    config.setdefault("qkv_bias", "qkv.bias" in tensors)
    if config["qkv_bias"] != ("qkv.bias" in tensors):
        raise ValueError(f"qkv_bias={config['qkv_bias']} but qkv.bias is "
                         f"{'' if 'qkv.bias' in tensors else 'not '}in the state_dict")
    if "num_heads" not in config:
        raise ValueError("num_heads is required in config (it is not in the state_dict)")

    out = Path(out_dir)
    # The crate reads every .npy of the folder: refuse to mix with another layer's files.
    stale = sorted({p.name for p in out.glob("*.npy")} - {f"{k}.npy" for k in tensors})
    if stale:
        raise FileExistsError(f"{out} holds other .npy files: {stale[:8]}")
    out.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for key, t in tensors.items():
        # float32 in torch first (numpy has no bfloat16), then C order.
        array = np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())
        with open(out / f"{key}.npy", "wb") as f:
            np.lib.format.write_array(f, array, version=(1, 0))
        shapes[key] = list(array.shape)
    text = json.dumps({"module": module, "config": config}, indent=1)
    (out / "config.json").write_text(text + "\n")
    return shapes


def json_object(text):
    """argparse type: a JSON object."""
    value = json.loads(text)  # argparse reports a ValueError as "invalid json_object value"
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("state_dict", help="a .pt file from torch.save(model.state_dict())")
    parser.add_argument("out_dir")
    parser.add_argument("--prefix", default="", help="the layer's prefix, e.g. blocks.3.attn.")
    parser.add_argument("--module", required=True, choices=MODULES)
    parser.add_argument("--config", default="{}", type=json_object,
                        help='constructor arguments as JSON, e.g. \'{"num_heads": 6}\'')
    args = parser.parse_args()
    state = torch.load(args.state_dict, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        sys.exit(f"error: {args.state_dict} holds a {type(state).__name__}, not a state_dict")
    # Training checkpoints often wrap the state_dict.
    for wrapper in ("state_dict", "model"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    try:
        shapes = export_layer(state, args.out_dir, args.module, args.config, args.prefix)
    except (ValueError, TypeError, FileExistsError) as e:
        sys.exit(f"error: {e}")
    for key, shape in shapes.items():
        print(f"{args.out_dir}/{key}.npy {shape}")
    print(f"{args.out_dir}/config.json")


if __name__ == "__main__":
    main()
