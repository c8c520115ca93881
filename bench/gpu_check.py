"""What the CUDA code path does, checked on a GPU in a few minutes: run by bench/gpu_check.sh on a lent device.

1. **The contract on the device**, every paradigm at a tiny size: the loss and its backward under the trainer's
   autocast (`pick_dtype("auto", device)`), `nll` in float32 against `nll` under autocast (the same noise), `generate`,
   and `infill` where the paradigm can; the chapters' CPU tests of the same calls, run on the device.
2. **Training**, every paradigm at the default shape through the trainer with `dtype="auto"` and `compile=True`, for
   `--steps` steps: the first evaluation's time (it includes compiling), the step time after it, validation bits/char,
   and a sample from the trained weights on the device.

Every check is caught on its own, so one failure does not hide the others. Writes gpu_check.json and gpu_check.md to
`--out` (default bench/results/). `--device cpu` runs the same checks here, to try the script without a GPU.
"""
import argparse
import datetime
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import torch  # noqa: E402
from nanoparadigm.files import pick_device, pick_dtype, autocast, cpu_name  # noqa: E402
from nanoparadigm.models import PARADIGMS, build_model, get_entry  # noqa: E402
from nanoparadigm.train import train  # noqa: E402

TINY = dict(n_layer=2, n_embd=64, block_size=64)


def attempt(results: list, what: str, fn):
    "Run `fn()`, appending {check, ok, seconds, value or error} to `results`."
    t0 = time.perf_counter()
    try:
        value = fn()
        results.append({"check": what, "ok": True, "seconds": round(time.perf_counter() - t0, 2), "value": value})
    except Exception as e:  # noqa: BLE001 - every failure is recorded, and the next check runs
        results.append({"check": what, "ok": False, "seconds": round(time.perf_counter() - t0, 2),
                        "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                        "traceback": traceback.format_exc()[-2000:]})
    print(("ok   " if results[-1]["ok"] else "FAIL ") + what + ("" if results[-1]["ok"] else ": " + results[-1]["error"]), flush=True)


def contract(name: str, device: torch.device, dtype: torch.dtype) -> dict:
    "The paradigm's calls on `device`: loss and backward under autocast, nll in both precisions, generate, infill."
    torch.manual_seed(0)
    config = {k: v for k, v in {**TINY, "n_head": 2}.items() if k in {f for f in get_entry(name).config.__dataclass_fields__}}
    model = build_model(name, 65, **config).to(device)
    x = torch.randint(0, 65, (8, model.config.block_size), device=device)              # (8, T)
    with autocast(device, dtype): loss = model.loss(x)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert math.isfinite(loss.item()) and grads and all(torch.isfinite(g).all() for g in grads), "non-finite loss or gradient"
    model.eval()
    torch.manual_seed(1); n32 = model.nll(x)                                            # (8,)
    with autocast(device, dtype): torch.manual_seed(1); n16 = model.nll(x)
    rel = ((n16.float() - n32) / n32).abs().max().item()
    assert rel < 0.01, f"nll under autocast differs from float32 by {rel:.2e}"
    with autocast(device, dtype): out = model.generate(4, 32)
    assert out.shape == (4, 32) and out.device.type == device.type
    infilled = None
    if model.can_infill:
        gap = model.infill(x[:1, :8], x[:1, 16:24], 8)
        infilled = list(gap.shape)
    return {"loss": loss.item(), "nll_rel_diff": rel, "generate": list(out.shape), "infill": infilled}


def trained(name: str, device: torch.device, steps: int, tmp: Path, compile: bool) -> dict:
    "A run at the default shape through the trainer in `dtype='auto'` (compiled): times, bits/char, a sample."
    res = train(paradigm=name, max_steps=steps, eval_interval=max(1, steps // 4), eval_batches=10, warmup_steps=min(100, steps // 4),
                device=str(device), dtype="auto", compile=compile, quiet=True, out_dir=str(tmp / name))
    rows = res.metrics
    per_step = (rows[-1]["time"] - rows[0]["time"]) / (rows[-1]["step"] - rows[0]["step"]) if len(rows) > 1 else math.nan
    cfg = json.loads((res.out_dir / "config.json").read_text())
    sample = res.model.generate(1, 128, generator=torch.Generator(device=device).manual_seed(0))
    from nanoparadigm.data import TextDataset
    text = TextDataset("shakespeare").decode(sample[0].cpu())
    return {"dtype": cfg["dtype"], "params": cfg["num_params"], "steps": res.step, "first_eval_s": rows[0]["time"],
            "ms_per_step_after": per_step * 1e3, "val_bpc": rows[-1]["val_bpc"], "bound": not res.model.exact_nll,
            "tokens_per_s": res.tokens_per_s, "sample": text[:128]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="the device to check (cpu: try the script without a GPU)")
    ap.add_argument("--steps", type=int, default=200, help="training steps per paradigm")
    ap.add_argument("--no-compile", action="store_true", help="train without torch.compile")
    ap.add_argument("--models", default=",".join(PARADIGMS), help="paradigms, comma separated")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"), help="folder for gpu_check.json and gpu_check.md")
    args = ap.parse_args()
    device = pick_device(args.device)
    dtype = pick_dtype("auto", device)
    env = {"torch": torch.__version__, "device": str(device), "auto_dtype": str(dtype).removeprefix("torch."),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "cpu": cpu_name(),
           "python": platform.python_version(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": "python bench/gpu_check.py " + " ".join(sys.argv[1:])}
    print(json.dumps(env), flush=True)
    names = [n for n in args.models.split(",") if n]
    results = []
    for name in names: attempt(results, f"contract/{name}", lambda: contract(name, device, dtype))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            attempt(results, f"train/{name}", lambda: trained(name, device, args.steps, Path(tmp), not args.no_compile))
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps({"environment": env, "results": results}, indent=1) + "\n")
    md = ["# The CUDA code path, checked on a device", "", f"Command: `{env['command']}` (through `bench/gpu_check.sh`).", "",
          f"Device: {env['gpu'] or env['device']}, torch {env['torch']}, Python {env['python']}, host CPU {env['cpu']}; "
          f"`--dtype auto` is {env['auto_dtype']} there; {env['date']}.", "",
          "| check | ok | seconds | result |", "|---|---|---:|---|"]
    for r in results:
        v = r.get("value") or {}
        if not r["ok"]: text = r["error"]
        elif r["check"].startswith("contract"):
            text = f"loss {v['loss']:.3f}; nll under autocast / float32 - 1 at most {v['nll_rel_diff']:.1e}; infill {v['infill'] or 'n/a'}"
        else:
            text = (f"{v['dtype']}, {v['params']:,} params, {v['steps']} steps: first evaluation at {v['first_eval_s']:.1f} s "
                    f"(compiling, if any), then {v['ms_per_step_after']:.1f} ms per step, evaluations included; val {v['val_bpc']:.3f} bits/char"
                    f"{' (bound)' if v['bound'] else ''}")
        md.append(f"| {r['check']} | {'yes' if r['ok'] else '**no**'} | {r['seconds']} | {text} |")
    (out / "gpu_check.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
