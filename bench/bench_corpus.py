"""Peak memory and time to the first training step of a large corpus, cold (no dataset cache) and warm (cache present).

A corpus of 10 MB or 100 MB is made by repeating the packaged Tiny Shakespeare into a temporary folder. Each case runs
in a fresh Python process, so that its peak resident memory is its own (`VmHWM` of /proc/self/status; `ru_maxrss`
is recorded too, but a child can inherit its parent's across fork and exec):

1. import torch and nanoparadigm (the baseline memory is taken here),
2. `TextDataset(path, tokenizer)`: read the text, then encode it and write the cache (cold) or map the cache (warm),
3. one `get_batch` and one optimizer step of a tiny AR model: the first training step.

The table gives the seconds of steps 2 and 3, the peak RSS, the dataset's peak above the baseline (also per character
of corpus), and the size of the cache file per token. BPE (512 tokens) runs only on corpora up to `--bpe-max-mb`
(repeated Shakespeare is kind to BPE: few distinct words, so its word cache makes encoding fast).

    python bench/bench_corpus.py                          # 10 and 100 MB, char and bpe
    python bench/bench_corpus.py --sizes 10 --out /tmp/x  # a quick look

Writes corpus.json and corpus.md to `--out` (default bench/results/).
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, resource, sys, time
def peak_mb():  # VmHWM: the peak RSS of this process's own address space (ru_maxrss can carry a parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"): return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: kilobytes on Linux, bytes on macOS
t_start = time.perf_counter()
import torch
from nanoparadigm.data import TextDataset, make_generator
from nanoparadigm.models import build_model
torch.manual_seed(0)
path, tokenizer, cache = sys.argv[1:4]
base = peak_mb()
t0 = time.perf_counter()
ds = TextDataset(path, tokenizer=tokenizer, bpe_vocab_size=512, cache_dir=cache)
t1 = time.perf_counter()
dataset_peak = peak_mb()
model = build_model("ar", ds.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=64)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = ds.get_batch("train", 16, 64, make_generator(0))  # (B, T)
loss = model.loss(x)
loss.backward(); opt.step()
t2 = time.perf_counter()
n_tokens = sum(ds.n_tokens(s) for s in ds.splits)
print(json.dumps({"import_s": t0 - t_start, "dataset_s": t1 - t0, "first_step_s": t2 - t1, "base_mb": base,
                  "dataset_peak_mb": dataset_peak, "peak_mb": peak_mb(),
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n_chars": sum(ds.n_chars.values()), "n_tokens": n_tokens,
                  "from_cache": ds.from_cache, "vocab_size": ds.vocab_size, "dtype": str(ds.tokens["train"].dtype),
                  "cache_bytes": ds.cache_path.stat().st_size if ds.cache_path.is_file() else None,
                  "loss": loss.item()}))
"""


def make_corpus(folder: Path, megabytes: int) -> Path:
    "Tiny Shakespeare repeated to about `megabytes` MB (1e6 bytes), written to `folder`."
    text = (REPO / "nanoparadigm" / "data" / "shakespeare.txt").read_bytes()
    path = folder / f"shakespeare-{megabytes}mb.txt"
    path.write_bytes(text * max(1, round(megabytes * 1e6 / len(text))))
    return path


def run_case(path: Path, tokenizer: str, cache: Path, timeout: float) -> dict:
    "One case in a fresh process; its measurements as a dict."
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), tokenizer, str(cache)], capture_output=True,
                         text=True, env=env, timeout=timeout, cwd=REPO)
    if out.returncode != 0: raise SystemExit(f"case {path.name} {tokenizer} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    import torch
    from nanoparadigm.files import cpu_name
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}


def table(rows: list[dict]) -> str:
    head = ("| corpus | tokenizer | cache | dataset ready (s) | first batch + step (s) | to first step (s) | peak RSS (MB) "
            "| dataset's peak above imports (MB) | bytes / char | cache file (bytes / token) |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        above = r.get("dataset_peak_mb", r["peak_mb"]) - r["base_mb"]  # old runs recorded only the overall peak
        per_token = f"{r['cache_bytes'] / r['n_tokens']:.2f} ({r['dtype'].removeprefix('torch.')})" if r["cache_bytes"] else "-"
        lines.append(f"| {r['n_chars'] / 1e6:.0f} MB | {r['tokenizer']} | {'warm' if r['from_cache'] else 'cold'} "
                     f"| {r['dataset_s']:.2f} | {r['first_step_s']:.2f} | {r['dataset_s'] + r['first_step_s']:.2f} "
                     f"| {r['peak_mb']:,.0f} | {above:,.0f} | {above * 2**20 / r['n_chars']:.2f} | {per_token} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 100], help="corpus sizes in MB")
    p.add_argument("--tokenizers", nargs="+", default=["char", "bpe"], choices=["char", "bpe"])
    p.add_argument("--bpe-max-mb", type=int, default=100, help="run bpe only on corpora up to this size")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per case")
    p.add_argument("--note", default="", help="a sentence about the conditions, added to the markdown")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = p.parse_args()
    rows, load_before = [], os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        for size in a.sizes:
            path = make_corpus(Path(tmp), size)
            for tok in a.tokenizers:
                if tok == "bpe" and size > a.bpe_max_mb: continue
                cache = Path(tmp) / f"cache-{size}-{tok}"  # empty: the first run is cold, the second warm
                for _ in ("cold", "warm"):
                    t0 = time.perf_counter()
                    r = {"size_mb": size, "tokenizer": tok, **run_case(path, tok, cache, a.timeout)}
                    r["wall_s"] = time.perf_counter() - t0
                    rows.append(r)
                    print(table([r]).splitlines()[-1], flush=True)
    info = {**machine(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "corpus.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    md = (f"# Corpus memory and time to the first training step\n\n{info['cpu']}, {info['logical_cpus']} logical CPUs, "
          f"torch {info['torch']}, Python {info['python']}, {info['date']}; load average (1, 5, 15 min) "
          f"{' '.join(f'{x:.2f}' for x in info['loadavg_before'])} before, "
          f"{' '.join(f'{x:.2f}' for x in info['loadavg_after'])} after.\n\n`{info['command']}`\n\n"
          + (f"{a.note}\n\n" if a.note else "") + table(rows) + "\n\n"
          "Each row is a fresh process. *Dataset ready*: `TextDataset(...)`, i.e. reading the text and hashing it for the "
          "cache key, then encoding and writing the cache (cold) or mapping and checking it (warm). *First batch + step*: "
          "one `get_batch(train, 16, 64)` and one AdamW step of a 1-layer AR model. *Dataset's peak above imports*: the peak "
          "resident memory (`VmHWM`) right after `TextDataset(...)`, minus its value after importing torch and "
          "nanoparadigm, divided by the corpus's characters in *bytes / char*; *peak RSS* is the whole process's peak, "
          "after the first step (its model, optimizer and autograd add about 60 MB whatever the corpus).\n")
    (a.out / "corpus.md").write_text(md)
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
