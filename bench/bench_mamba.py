"""Benchmark a Mamba training step against the autoregressive transformer's, side by side in one process.

Both models are built with `nanoparadigm.models.build_model(name, 65)`: the course's default shape (n_embd 128,
n_layer 4, dropout 0.1; Mamba with d_state 16, expand_factor 2, d_conv 4), trained on character-level Shakespeare
batches of 32 x 128 tokens. One training step is the loss (forward), `loss.backward()` and an AdamW step.

1. **Training step** of AR, of Mamba with the fused scan on the thread count that `scan_threads()` chose for this
   machine ("mamba"), and of Mamba with the fused scan pinned to each candidate thread count ("mamba/threads=N",
   through `NANOPARADIGM_SCAN_THREADS`). With `--materialized`, also Mamba on the materialized scans (several times
   slower; timed for `--slow-steps` steps). All models take turns step by step on the same batch, the order
   rotating every round, so that they see the same machine load; each reports the median over `--steps` steps after
   `--warmup` warm-up rounds, and the Mamba/AR ratio is given as the ratio of medians and as the median of the
   per-round ratios.
2. **The fused scan alone** (forward + backward of one layer at the default shape: x, dt (128, 32, 256),
   B, C (128, 32, 16), A (256, 16)) on each candidate thread count and chunk length (`--chunks`), all taking turns,
   medians over `--scan-reps`.
3. With `--compiled`: **the selective scan alone under `torch.compile`** — the materialized sequential loop (the
   per-step loop of the selective SSM, written plainly) compiled by TorchInductor, against the same loop eager and
   the fused scan on the chosen thread count, forward + backward of one layer at the default shape, taking turns;
   the compile time (the first call) is reported beside it.

Timings on a shared machine are noisy: read the ratios, with the load averages recorded beside them. Run it with

    python bench/bench_mamba.py

(a few minutes on 2 cores). Writes bench/results/mamba.json and bench/results/mamba.md.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import torch  # noqa: E402
from nanoparadigm.data import TextDataset  # noqa: E402
from nanoparadigm.models import build_model  # noqa: E402
from nanoparadigm.files import cpu_name  # noqa: E402
from nanoparadigm.mamba import (FUSED_CHUNK, SCAN_THREADS_ENV, scan_threads, scan_threads_key,  # noqa: E402
                                thread_candidates, time_scan_threads, random_scan_inputs, SelectiveScan,
                                selective_scan_materialized)

TARGET_RATIO, GOAL_RATIO = 1.5, 1.0  # a Mamba step may cost at most 1.5 AR steps; 1.0 is the goal


def step_fn(model, scan_threads_env: str | None):
    """A closure doing one training step of `model` on a batch; returns its wall time in seconds.
    `scan_threads_env`: the value of NANOPARADIGM_SCAN_THREADS during the step (None: unset, the machine's choice)."""
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3, betas=(0.9, 0.99))
    model.train()

    def step(x):
        before = os.environ.pop(SCAN_THREADS_ENV, None)
        if scan_threads_env is not None: os.environ[SCAN_THREADS_ENV] = scan_threads_env
        try:
            t0 = time.perf_counter()
            loss = model.loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return time.perf_counter() - t0
        finally:
            os.environ.pop(SCAN_THREADS_ENV, None)
            if before is not None: os.environ[SCAN_THREADS_ENV] = before
    return step


def bench_steps(models: dict, data, args) -> dict:
    """{name: {round: seconds}} of the timed steps: the models take turns on the same batch, the order rotating every
    round. The fast ones are timed for `--steps` rounds after `--warmup`; materialized scans in rounds 1..`--slow-steps`
    (after one warm-up round). AR is timed in every round but the first, so that every step has an AR step beside it."""
    steps = {name: step_fn(m, env) for name, (m, env, _) in models.items()}
    slow = {name for name, (_, _, is_slow) in models.items() if is_slow}
    times = {name: {} for name in models}
    gen = data.make_generator(0)
    names = list(models)
    n_rounds = args.warmup + args.steps
    for i in range(n_rounds):
        x = data.get_batch("train", args.batch_size, args.block_size, gen)
        for name in names[i % len(names):] + names[:i % len(names)]:
            if name in slow and i > args.slow_steps: continue
            times[name][i] = steps[name](x)
        print(f"round {i + 1}/{n_rounds}: " + ", ".join(f"{n} {1e3 * t[i]:.0f} ms" for n, t in times.items() if i in t), flush=True)
    timed = lambda name, r: (1 <= r <= args.slow_steps) if name in slow else (r >= args.warmup or (name == "ar" and r >= 1))
    return {name: {r: s for r, s in t.items() if timed(name, r)} for name, t in times.items()}


def bench_compiled(args, threads: int) -> dict:
    """Forward + backward of one layer's selective scan at the default shape: the fused scan on `threads`, the
    materialized sequential loop eager and compiled by `torch.compile`. Returns {"compile_s": first call's seconds,
    "ms": {name: [ms per round]}}; the three take turns for `--scan-reps` rounds after one warm-up round."""
    inputs, dy = random_scan_inputs((args.block_size, args.batch_size, 256, 16))
    loop = lambda *a: selective_scan_materialized(*a, method="sequential")
    import torch._inductor.config as inductor_config
    inductor_config.force_disable_caches = True                      # a cold compile, as on a fresh machine
    compiled = torch.compile(loop)
    t0 = time.perf_counter()
    compiled(*inputs).backward(dy)                                   # compiles forward and backward
    compile_s = time.perf_counter() - t0
    fns = {f"fused scan, {threads} thread(s)": lambda *a: SelectiveScan.apply(*a, FUSED_CHUNK, threads),
           "materialized loop, eager": loop, "materialized loop, torch.compile": compiled}
    ms = {name: [] for name in fns}
    for rep in range(args.scan_reps + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(*inputs).backward(dy)
            if rep: ms[name].append(1e3 * (time.perf_counter() - t0))
    return {"compile_s": compile_s, "ms": ms}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="PyTorch intra-op threads (default: its own setting)")
    p.add_argument("--steps", type=int, default=30, help="timed steps of AR and of the fused Mamba variants")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--materialized", default="", help="comma-separated materialized scans to time too: sequential,chunked,blelloch")
    p.add_argument("--slow-steps", type=int, default=3, help="timed steps of the materialized scans")
    p.add_argument("--scan-reps", type=int, default=10)
    p.add_argument("--chunks", default="2,4,8,16", help="chunk lengths of the fused scan to time alone")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--compiled", action="store_true", help="also time the materialized scan under torch.compile (compiles for about a minute)")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "mamba"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = TextDataset("shakespeare")
    load_start = os.getloadavg()

    chosen = scan_threads()  # the machine's choice: measured now if this machine/thread count has none cached
    candidates = thread_candidates()
    models = {"ar": (build_model("ar", 65, block_size=args.block_size), None, False),
              "mamba": (build_model("mamba", 65, block_size=args.block_size), None, False)}
    for n in candidates:
        models[f"mamba/threads={n}"] = (build_model("mamba", 65, block_size=args.block_size), str(n), False)
    for s in filter(None, args.materialized.split(",")):
        models[f"mamba/{s}"] = (build_model("mamba", 65, block_size=args.block_size, scan=s), None, True)
    times = bench_steps(models, data, args)
    chunks = [int(c) for c in args.chunks.split(",")]
    scan_alone = {(n, c): [] for c in chunks for n in candidates}
    for _ in range(args.scan_reps):  # one timed round of every (threads, chunk) at a time: they share the load
        for c in chunks:
            t = time_scan_threads(candidates, reps=1, shape=(args.block_size, args.batch_size, 256, 16), budget=float("inf"), chunk=c)
            for n in candidates: scan_alone[(n, c)] += t[n]
    compiled = bench_compiled(args, chosen) if args.compiled else None
    load_end = os.getloadavg()

    own = {n: [s for r, s in t.items() if n != "ar" or r >= args.warmup] for n, t in times.items()}  # AR: its timed rounds
    med = {n: statistics.median(t) for n, t in own.items()}
    ratio_of_medians = {n: med[n] / med["ar"] for n in med}
    paired = {n: statistics.median(s / times["ar"][r] for r, s in t.items()) for n, t in times.items()}
    scan_threads_of = {"ar": None, "mamba": chosen, **{f"mamba/threads={n}": n for n in candidates}}
    command = "python bench/bench_mamba.py " + " ".join(sys.argv[1:])
    result = {
        "command": command.strip(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_start": load_start, "load_average_end": load_end},
        "scan_threads": {"chosen": chosen, "candidates": candidates, "key": scan_threads_key(),
                         "override": os.environ.get(SCAN_THREADS_ENV)},
        "shape": {"n_embd": 128, "n_layer": 4, "d_state": 16, "expand_factor": 2, "d_conv": 4,
                  "batch_size": args.batch_size, "block_size": args.block_size, "vocab_size": 65},
        "params": {n: m.num_params() for n, (m, _, _) in models.items()},
        "steps_timed": {n: len(t) for n, t in own.items()},
        "step_ms_median": {n: 1e3 * v for n, v in med.items()},
        "step_ms_by_round": {n: {str(r): 1e3 * s for r, s in t.items()} for n, t in times.items()},
        "ratio_to_ar_of_medians": ratio_of_medians,
        "ratio_to_ar_median_paired": paired,
        "scan_fwd_bwd_ms_median": {f"threads={n} chunk={c}": 1e3 * statistics.median(t) for (n, c), t in scan_alone.items()},
        "compiled_scan": None if compiled is None else {"compile_s": compiled["compile_s"],
                                                        "ms_median": {k: statistics.median(v) for k, v in compiled["ms"].items()}},
        "target_ratio": TARGET_RATIO, "goal_ratio": GOAL_RATIO,
        "target_met": ratio_of_medians["mamba"] <= TARGET_RATIO,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")

    m = result["machine"]
    loads = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
    lines = ["# Mamba vs AR: one training step", "",
             "Forward, `loss.backward()` and an AdamW step at the course's default shape (n_embd 128, n_layer 4, dropout 0.1, "
             f"batch {args.batch_size} x {args.block_size} tokens of character-level Shakespeare; Mamba with d_state 16, "
             "expand_factor 2, d_conv 4), both models from `build_model(name, 65)`. The models take turns step by step "
             "on the same batches in one process, so they see the same machine load.", "",
             f"Command: `{result['command']}`", "",
             f"CPU: **{m['cpu']}**, {m['logical_cpus']} logical CPUs, torch threads {m['torch_threads']}; "
             f"load average (1, 5, 15 min) {loads(load_start)} at the start, {loads(load_end)} at the end; "
             f"{m['platform']}, Python {m['python']}, torch {m['torch']}; {result['date']}.", "",
             f"The fused scan's thread count chosen for this machine by `scan_threads()`: **{chosen}** "
             f"(candidates {candidates}{'; set by ' + SCAN_THREADS_ENV if result['scan_threads']['override'] else ''}).", "",
             f"Medians over {args.steps} steps after {args.warmup} warm-up rounds"
             + (f" ({args.slow_steps} steps after 1 for the materialized scans)." if args.materialized else ".")
             + " Paired ratios: each step over the AR step of the same round.", "",
             "| model | params | scan threads | ms per step (median) | / AR (ratio of medians) | / AR (median of paired ratios) |",
             "|---|---:|---:|---:|---:|---:|"]
    for n in models:
        th = scan_threads_of.get(n)
        lines.append(f"| {n} | {result['params'][n]:,} | {'' if th is None else th} | {1e3 * med[n]:.0f} | "
                     f"{ratio_of_medians[n]:.2f} | {paired[n]:.2f} |")
    r = ratio_of_medians["mamba"]
    lines += ["", f"Target: a Mamba step at most {TARGET_RATIO}x an AR step ({'met' if r <= TARGET_RATIO else 'NOT met'}: "
              f"{r:.2f}x); goal {GOAL_RATIO}x ({'met' if r <= GOAL_RATIO else 'not met'}).", "",
              f"The fused scan alone, forward + backward of one layer (L={args.block_size}, B={args.batch_size}, D=256, N=16), "
              f"ms, median of {args.scan_reps} (the library uses chunks of {FUSED_CHUNK}):", "",
              "| scan threads | " + " | ".join(f"chunk {c}" for c in chunks) + " |", "|---:|" + "---:|" * len(chunks)]
    lines += [f"| {n} | " + " | ".join(f"{1e3 * statistics.median(scan_alone[(n, c)]):.1f}" for c in chunks) + " |"
              for n in candidates]
    if compiled:
        fused = next(iter(compiled["ms"]))
        base = statistics.median(compiled["ms"][fused])
        lines += ["", f"The selective scan alone under `torch.compile` (TorchInductor, CPU): forward + backward of one layer at "
                  f"the same shape, median of {args.scan_reps} rounds taking turns; compiling took {compiled['compile_s']:.0f} s "
                  "(the first call).", "", "| scan | ms (median) | / fused |", "|---|---:|---:|"]
        lines += [f"| {k} | {statistics.median(v):.1f} | {statistics.median(v) / base:.2f} |" for k, v in compiled["ms"].items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
