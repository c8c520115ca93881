"""Training in float32 against bfloat16 autocast on the CPU: step time for all five paradigms, quality for three.

1. **Step time** (`--speed`): every paradigm at the course's default shape (`build_model(name, 65)`: 4 layers, 128
   wide, batch 32 x 128 tokens of character-level Shakespeare), one training step as the trainer does it (the loss
   under `autocast(device, dtype)`, `backward`, gradient clipping at 1, an AdamW step), in float32 and in bfloat16.
   Beside them, on the same batches: ar without dropout (what dropout 0.1 costs; a recipe question for the
   fair-protocol issue), and diffusion with its attention left to autocast's bfloat16 kernel (the library keeps
   attention in float32 on the CPU, `nanoparadigm.transformer.attention`; this row says why). All models take turns
   step by step, the order rotating every round, so they see the same machine load; medians over `--steps` rounds
   after `--warmup`, for each thread count in `--threads`, ratios of medians and medians of paired ratios.
2. **Quality** (`--quality`): ar, diffusion and mamba trained `--max_steps` steps (default 2000, the committed study's
   budget) at their default recipe in each precision (`nanoparadigm.train.train_or_reuse`, so a stopped run resumes),
   then bits/char on the whole validation split, in float32 (`nanoparadigm.likelihood.likelihood`, the evaluation's
   Monte-Carlo repeats for the bounds). Runs go to bench/runs/precision/<paradigm>-<dtype>/ (not committed).
   `--runs ar-float32,ar-bfloat16` trains only those, so two processes with `--threads 1` can share two cores.
3. **The report** (`--report`, also after 1 or 2): bench/results/precision.json and precision.md from what 1 and 2
   saved (bench/runs/precision/speed.json and <run>/score.json).

Run everything with

    python bench/bench_precision.py --speed --quality --report

(about an hour on 2 cores, most of it the six 2000-step runs). Time nothing else while it runs.
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
import torch.nn.functional as F  # noqa: E402
import nanoparadigm.transformer as transformer  # noqa: E402
from nanoparadigm.data import TextDataset, make_generator  # noqa: E402
from nanoparadigm.evaluate import EvalSettings, markdown_table  # noqa: E402
from nanoparadigm.files import autocast, cpu_name, pick_dtype, BF16_CPU_FLAGS, cpu_flags  # noqa: E402
from nanoparadigm.likelihood import likelihood  # noqa: E402
from nanoparadigm.models import PARADIGMS, build_model, load_model  # noqa: E402
from nanoparadigm.train import train_or_reuse  # noqa: E402

RUNS = REPO / "bench" / "runs" / "precision"
RESULTS = REPO / "bench" / "results" / "precision"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
QUALITY = ("ar", "diffusion", "mamba")
TARGETS = {"ar": 0.65, "every": 0.85, "bpc": 0.02}  # issue 23: bf16/fp32 step ratios and the bits/char tolerance


def machine() -> dict:
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "bf16_flags": sorted(BF16_CPU_FLAGS & cpu_flags()),
            "auto_dtype": str(pick_dtype("auto", "cpu")).removeprefix("torch."), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def bf16_attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0):
    "Attention left to autocast (bfloat16 on the CPU): what `transformer.attention` avoids."
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=dropout_p)


def make_step(model, dtype: torch.dtype, attention=None):
    "A closure doing one training step of `model` in `dtype` on a batch, as the trainer does; returns its seconds."
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3, betas=(0.9, 0.99))
    model.train()

    def step(x):
        kept = transformer.attention
        if attention is not None: transformer.attention = attention
        try:
            t0 = time.perf_counter()
            with autocast("cpu", dtype): loss = model.loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return time.perf_counter() - t0
        finally: transformer.attention = kept
    return step


def speed(args) -> dict:
    "{threads: {row: {params, dtype, steps: [seconds]}}}: every row takes one step per round on the same batch."
    data = TextDataset("shakespeare")
    rows = {}
    for name in PARADIGMS:
        for d in DTYPES:
            torch.manual_seed(0)
            rows[f"{name}/{d}"] = (name, d, build_model(name, data.vocab_size), None)
    for d in DTYPES:
        torch.manual_seed(0)
        rows[f"ar/dropout=0/{d}"] = ("ar", d, build_model("ar", data.vocab_size, dropout=0.0), None)
    torch.manual_seed(0)
    rows["diffusion/bf16 attention/bfloat16"] = ("diffusion", "bfloat16", build_model("diffusion", data.vocab_size), bf16_attention)
    out = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        steps = {k: make_step(m, DTYPES[d], att) for k, (_, d, m, att) in rows.items()}
        times = {k: [] for k in rows}
        gen = make_generator(0)
        order = list(rows)
        for r in range(args.warmup + args.steps):
            x = data.get_batch("train", 32, 128, gen)                               # (32, 128)
            for k in order[r % len(order):] + order[:r % len(order)]:
                t = steps[k](x)
                if r >= args.warmup: times[k].append(t)
            print(f"threads {threads}: round {r + 1}/{args.warmup + args.steps}", file=sys.stderr, flush=True)
        out[threads] = {k: {"paradigm": rows[k][0], "dtype": rows[k][1], "params": rows[k][2].num_params(), "seconds": times[k]}
                        for k in rows}
    return out


def quality(args):
    "Train (or resume) and score each run in `args.runs`; each writes RUNS/<run>/score.json."
    torch.set_num_threads(args.threads[0])
    for run in args.runs:
        paradigm, dtype = run.split("-")
        out = RUNS / run
        t0 = time.perf_counter()
        res = train_or_reuse(paradigm=paradigm, dtype=dtype, max_steps=args.max_steps, out_dir=str(out), device="cpu", quiet=True)
        model, tok, *_ = load_model(out / "best.pt")
        data = TextDataset("shakespeare", tokenizer=tok)
        lk = likelihood(model, data, mc_repeats=EvalSettings().mc_repeats)                # float32: no autocast here
        score = {"run": run, "paradigm": paradigm, "dtype": dtype, "steps": res.step, "train_seconds": res.wall_time,
                 "threads": args.threads[0], "bpc": lk["bpc"], "bpc_mc_se": lk["bpc_mc_se"], "bound": lk["bound"],
                 "eval_tokens": lk["eval_tokens"], "trainer_val_bpc": res.metrics[-1]["val_bpc"],
                 "curve": [(m["step"], m["val_bpc"]) for m in res.metrics], "session_seconds": time.perf_counter() - t0}
        (out / "score.json").write_text(json.dumps(score, indent=1) + "\n")
        print(f"{run}: {lk['bpc']:.4f} bits/char (+- {lk['bpc_mc_se']:.4f}) after {res.step} steps", flush=True)


def report(args):
    "Assemble bench/results/precision.{json,md} from the saved speed and quality pieces."
    sp = json.loads((RUNS / "speed.json").read_text())
    scores = {p.parent.name: json.loads(p.read_text()) for p in sorted(RUNS.glob("*/score.json"))}
    med = lambda xs: statistics.median(xs) * 1e3
    primary = str(min(int(t) for t in sp["timings"]))
    result = {"machine": sp["machine"], "command_speed": sp["command"], "targets": TARGETS, "paradigms": {},
              "by_threads": {}, "quality_runs": scores}
    for threads, rows in sp["timings"].items():
        table = {}
        for k, r in rows.items():
            base = rows[f"{r['paradigm']}/float32"]["seconds"] if not k.startswith("ar/dropout=0") else rows["ar/dropout=0/float32"]["seconds"]
            table[k] = {"paradigm": r["paradigm"], "dtype": r["dtype"], "params": r["params"], "ms": med(r["seconds"]),
                        "ratio": med(r["seconds"]) / med(base),
                        "paired_ratio": statistics.median(a / b for a, b in zip(r["seconds"], base)), "n": len(r["seconds"])}
        result["by_threads"][threads] = table
    for name in PARADIGMS:
        t = result["by_threads"][primary]
        entry = {"step_ms": {d: t[f"{name}/{d}"]["ms"] for d in DTYPES}, "ratio": t[f"{name}/bfloat16"]["ratio"],
                 "threads": int(primary)}
        if all(f"{name}-{d}" in scores for d in DTYPES):
            entry["bpc"] = {d: scores[f"{name}-{d}"]["bpc"] for d in DTYPES}
            entry["bpc_mc_se"] = {d: scores[f"{name}-{d}"]["bpc_mc_se"] for d in DTYPES}
            entry["bpc_difference"] = entry["bpc"]["bfloat16"] - entry["bpc"]["float32"]
        result["paradigms"][name] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    md = ["# Training precision on the CPU: float32 against bfloat16 autocast", "",
          "One training step as the trainer does it (loss under `autocast(device, dtype)`, backward, gradient clipping, AdamW) "
          "at the course's default shape (4 layers, 128 wide, batch 32 x 128 characters of Shakespeare), every model from "
          "`build_model(name, 65)`. The rows take turns step by step on the same batches in one process; ratios are against "
          "the same paradigm's float32 row (ar without dropout: against its own float32 row).", "",
          f"Command: `{sp['command']}`", "",
          f"CPU: **{m['cpu']}**, {m['logical_cpus']} logical CPUs, bfloat16 flags {', '.join(m['bf16_flags']) or 'none'} "
          f"(so `--dtype auto` is {m['auto_dtype']} here); {m['platform']}, Python {m['python']}, torch {m['torch']}; {m['date']}; "
          f"load average {', '.join(f'{x:.2f}' for x in sp['load_start'])} at the start, "
          f"{', '.join(f'{x:.2f}' for x in sp['load_end'])} at the end.", ""]
    for threads, table in result["by_threads"].items():
        n = next(iter(table.values()))["n"]
        md += [f"## Step time, {threads} thread(s)", "", f"Medians over {n} steps.", "",
               markdown_table(["model", "dtype", "params", "ms per step", "/ float32 (ratio of medians)", "/ float32 (median of paired ratios)"],
                              [[k.rsplit("/", 1)[0], r["dtype"], f"{r['params']:,}", f"{r['ms']:.0f}", f"{r['ratio']:.2f}",
                                f"{r['paired_ratio']:.2f}"] for k, r in table.items()]), ""]
    if scores:
        md += ["## Quality after training", "",
               "Each run at its paradigm's default recipe and seed 1337, trained in the named precision; bits/char of its best.pt on "
               "the whole validation split, computed in float32 (a bound for diffusion, with its Monte-Carlo standard error). "
               + (args.quality_note + " " if args.quality_note else "") + "Training minutes are of runs that shared the machine: "
               "read them as what the runs took, not as timings.", "",
               markdown_table(["run", "steps", "train minutes (threads)", "val bits/char", "MC s.e."],
                              [[k, s["steps"], f"{s['train_seconds'] / 60:.1f} ({s['threads']})",
                                f"{s['bpc']:.4f}{' (bound)' if s['bound'] else ''}", f"{s['bpc_mc_se']:.4f}"] for k, s in scores.items()]), ""]
    md += ["## Against the targets", "",
           markdown_table(["paradigm", f"bf16 / fp32 step ({primary} thread)", "target", "bits/char bf16 - fp32", "target"],
                          [[p, f"{e['ratio']:.2f}", f"<= {TARGETS['ar'] if p == 'ar' else TARGETS['every']}",
                            f"{e['bpc_difference']:+.4f}" if "bpc_difference" in e else "not trained", f"within {TARGETS['bpc']}"]
                           for p, e in result["paradigms"].items()]), ""]
    RESULTS.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speed", action="store_true", help="time the training steps")
    ap.add_argument("--quality", action="store_true", help="train and score the runs of --runs")
    ap.add_argument("--report", action="store_true", help="write bench/results/precision.{json,md}")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma separated (--quality uses the first)")
    ap.add_argument("--steps", type=int, default=20, help="timed rounds per thread count")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    ap.add_argument("--max_steps", type=int, default=2000, help="training steps of each quality run")
    ap.add_argument("--quality_note", default="", help="a sentence for the report on where the quality runs were trained")
    ap.add_argument("--runs", default=",".join(f"{p}-{d}" for p in QUALITY for d in DTYPES), help="quality runs, <paradigm>-<dtype>")
    args = ap.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    args.runs = [r for r in args.runs.split(",") if r]
    if not (args.speed or args.quality or args.report): ap.error("say what to do: --speed, --quality and/or --report")
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.quality: quality(args)
    if args.speed:
        load_start = os.getloadavg()
        timings = speed(args)
        (RUNS / "speed.json").write_text(json.dumps({"machine": machine(), "command": "python bench/bench_precision.py " + " ".join(sys.argv[1:]),
                                                     "load_start": load_start, "load_end": os.getloadavg(), "timings": timings}) + "\n")
    if args.report: report(args)


if __name__ == "__main__":
    main()
