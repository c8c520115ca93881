"""Time the README's first command, phase by phase, as a newcomer runs it.

    python bench/bench_main_job.py                     # the README's command: --seconds 120 per paradigm
    python bench/bench_main_job.py --seconds 20        # the same pipeline, short training (a quick check of this script)
    python bench/bench_main_job.py --install           # first a fresh venv and the README's pip install (of this checkout)

It runs `nanoparadigm_compare --budget wallclock --seconds S --out DIR` (plus any `--extra` flags) in a pseudo-terminal,
as a user at a terminal sees it (progress bars included), stamps every line it prints (a carriage return starts a new
line, as a progress bar redraws), and splits the run into phases by the lines that open them: training (the trainer's
"<paradigm>: N parameters" lines), evaluation ("evaluating ..."), the reversal-curse and known-entropy experiments, and
the rest (figures, traces, the report). It reports each phase's minutes, the total with the install, and the longest
silence (the most seconds between two outputs). Results: bench/results/main_job.{md,json}. One run: the job takes
20 minutes, so this is one measurement, not a median; the machine must be otherwise idle.
"""
import argparse, fcntl, json, os, platform, pty, re, select, shutil, struct, subprocess, sys, tempfile, termios, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = [("training", re.compile(r"^\w+: [\d,]+ parameters on ")),
          ("evaluation", re.compile(r"^evaluating \(")),
          ("reversal-curse experiment", re.compile(r"^reversal-curse experiment ")),
          ("known-entropy experiment", re.compile(r"^known-entropy experiment ")),
          ("figures and report", re.compile(r"^known-entropy experiment: done"))]


def cpu() -> str:
    try: out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError: return platform.processor() or "unknown"
    name = re.search(r"Model name:\s*(.+)", out)
    return f"{name.group(1).strip() if name else 'unknown'}, {os.cpu_count()} logical CPUs"


def install(venv: Path) -> tuple[float, Path]:
    "The README's install line, into a fresh venv, of this checkout (the README installs from GitHub; same files)."
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0", str(ROOT)], check=True)
    return time.perf_counter() - t0, venv / "bin"


def run_in_pty(cmd: list[str], cwd: Path) -> tuple[list[tuple[float, str]], int]:
    "Run `cmd` with a terminal as stdout and stderr; every output line (a \\r or \\n ends one) with its time from the start."
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))   # 40 x 120: a terminal's size (tqdm draws to fit)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    os.close(slave)
    lines, buf = [], b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try: chunk = os.read(master, 65536)
            except OSError: chunk = b""   # the child closed the terminal
            if not chunk: break
            now = time.monotonic() - t0
            buf += chunk
            *done, buf = re.split(rb"[\r\n]", buf)
            lines += [(now, part.decode("utf-8", "replace")) for part in done if part.strip()]
        elif proc.poll() is not None: break
    if buf.strip(): lines.append((time.monotonic() - t0, buf.decode("utf-8", "replace")))
    return lines, proc.wait()


def phases(lines: list[tuple[float, str]], end: float) -> dict:
    "Seconds of each phase: from the first line that opens it to the first line that opens a later one."
    starts = {}
    for t, text in lines:
        clean = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).strip()
        for name, pattern in PHASES:
            if name not in starts and pattern.search(clean): starts[name] = t
    order = sorted(starts.items(), key=lambda kv: kv[1])
    return {name: (order[i + 1][1] if i + 1 < len(order) else end) - t for i, (name, t) in enumerate(order)} | (
        {"starting": order[0][1]} if order else {})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120, help="training seconds per paradigm (the README's: 120)")
    ap.add_argument("--install", action="store_true", help="time a fresh venv and the README's pip install first")
    ap.add_argument("--extra", default="", help="more flags for nanoparadigm_compare, e.g. '--eval full'")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="where main_job.md and main_job.json go")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nanoparadigm-main-job-"))
    install_s, bin_dir = (install(work / "venv") if args.install else (None, Path(sys.executable).parent))
    cmd = [str(bin_dir / "nanoparadigm_compare"), "--budget", "wallclock", "--seconds", f"{args.seconds:g}",
           "--out", "report", *args.extra.split()]
    lines, code = run_in_pty(cmd, work)
    end = lines[-1][0] if lines else 0.0
    times = [0.0] + [t for t, _ in lines]
    gaps = [b - a for a, b in zip(times, times[1:])]
    texts = ["(start)"] + [text for _, text in lines]
    silences = sorted(((g, round(times[i], 1), texts[i][:160]) for i, g in enumerate(gaps)), reverse=True)[:5]
    parts = phases(lines, end)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": " ".join(["nanoparadigm_compare"] + cmd[1:]), "exit_code": code, "cpu": cpu(),
              "python": platform.python_version(), "commit": commit, "install_s": install_s, "run_s": end,
              "total_s": end + (install_s or 0.0), "phases_s": parts, "longest_silence_s": max(gaps) if gaps else None,
              "output_lines": len(lines), "longest_silences": [{"seconds": round(g, 1), "after_s": t, "after_line": x}
                                                                for g, t, x in silences],
              "last_lines": [text for _, text in lines[-12:]]}
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    (out / "main_job.json").write_text(json.dumps(result, indent=1) + "\n")
    rows = ([("install (fresh venv, pip install torch==2.13.0 and the package)", install_s)] if install_s is not None else [])
    rows += [(name, parts[name]) for name in ["starting"] + [p for p, _ in PHASES] if name in parts]
    rows += [("**total**", result["total_s"])]
    md = ["# The README's first command, timed", "",
          f"`{result['command']}` on {result['cpu']}, Python {result['python']}, package at `{commit}`; exit code {code}.",
          f"One run, in a pseudo-terminal, nothing else running. Longest silence: {result['longest_silence_s']:.1f} s "
          f"between two outputs ({len(lines)} output lines and bar updates).", "",
          "| phase | seconds | minutes |", "|---|---:|---:|"] + [f"| {name} | {s:.0f} | {s / 60:.1f} |" for name, s in rows]
    (out / "main_job.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
