"""Benchmark gart against DVC 3.x side by side and print times, ratios and targets."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets  # noqa: E402  (sibling module; benchmarks/ is not a package)

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------
# Commands. Adjust these when the gart CLI settles; "{x}" fields are filled per call.
# ---------------------------------------------------------------------------
GART_COMMANDS: dict[str, list[str]] = {
    "init": ["init"],
    "add": ["add", "{path}", "--name", "{name}"],
    "status": ["status"],
    "remote_add": ["remote", "add", "storage", "{url}", "--default"],
    "remote_endpoint": ["remote", "modify", "storage", "endpoint_url", "{endpoint}"],
    "push": ["push"],
    "push_to": ["push", "-r", "{remote}"],
    "pull": ["pull", "{name}"],
}
DVC_COMMANDS: dict[str, list[str]] = {
    "init": ["init", "-q"],
    "add": ["add", "{path}"],
    "status": ["status"],
    "remote_add": ["remote", "add", "-d", "storage", "{url}"],
    "remote_endpoint": ["remote", "modify", "storage", "endpointurl", "{endpoint}"],
    "push": ["push"],
    "push_to": ["push", "-r", "{remote}"],
    "pull": ["pull"],
}
# Exit codes that count as success, per command key (e.g. if `gart status` exits 1 on changes).
OK_CODES: dict[str, tuple[int, ...]] = {}

TAGS_NAME = "tagged"
TAGS_COUNT = 2000
# (row label, gart argv) timed in the repo holding TAGS_COUNT tags; target < TAGS_LIMIT_S.
# (row label, gart argv, text its stdout must contain or None): a command that "succeeds"
# without doing the work must not pass.
TAGS_COMMANDS: list[tuple[str, list[str], str | None]] = [
    ("versions", ["versions", TAGS_NAME], "v1999"),
    ("pull @v1500 --dry-run", ["pull", f"{TAGS_NAME}@v1500", "--dry-run"], None),
    ("show @v1500", ["show", f"{TAGS_NAME}@v1500"], "v1500"),
]
TAGS_LIMIT_S = 0.5

LINEAGE_RUNS = 10_000
# model@v0..v<LINEAGE_VERSIONS-1> are published for real (gart add + push), so the query
# resolves to a manifest; the run records carry those versions' real digests.
LINEAGE_NAME = "model"
LINEAGE_VERSIONS = 3
LINEAGE_COMMANDS: list[tuple[str, list[str], str | None]] = [
    # Run 7 produced model@v2 (see datasets.run_record): the graph must show it.
    ("lineage model@v2", ["lineage", f"{LINEAGE_NAME}@v2"], datasets.run_record(7)[0]),
    # Newest first: the last run written must be listed.
    ("runs", ["runs"], datasets.run_record(LINEAGE_RUNS - 1)[0]),
]
LINEAGE_LIMIT_S = 1.0

MEMORY_LIMIT_MIB = 300.0
S3_BUCKET = "bench"
S3_REQ_TARGET = 1 / 10  # gart must send at least 10x fewer requests than dvc
CMD_TIMEOUT_S = 1800  # a hung command is killed so one bad row never stalls the run
# Never committed: the data itself and tool-local state (in case a tool does not ignore it).
LOCAL_ONLY = ("data/", ".gart/cache/", ".gart/tmp/", ".gart/config.local.yaml")
SCENARIOS = ("small", "large", "remote", "s3", "tags", "lineage", "memory", "edits")
EDITS = ("append", "overwrite", "insert")  # the `edits` scenario's new versions of 1 GiB
EDIT_LABELS = {"append": "append 1%", "overwrite": "overwrite 1% at 10 offsets",
               "insert": "insert 1 MiB mid-file"}
EDIT_BYTES_LIMIT = 0.03  # new bytes stored and sent per new version, share of the file
FLOOR_LIMIT = 1.2  # first add/push/pull of 2x256 MiB vs a `dd conv=fsync` of the same bytes
HEAVY_DEFAULT_REPEAT = 1
LIGHT_DEFAULT_REPEAT = 5  # tags/lineage commands are sub-second: take a median of several

log = logging.getLogger("bench")


def tag_message(name: str, version: int, digest: str, size: int, count: int) -> str:
    """Annotated-tag message of a synthetic version, as gitartifacts.aliases.version_message."""
    return (
        f"gart-version: 1\nname: {name}\nversion: v{version}\ndigest: {digest}\n"
        f"size: {size}\ncount: {count}\nauthor: bench <bench@example.invalid>\n"
        "time: 2026-11-27T22:15:00Z\n"
    )


# ---------------------------------------------------------------------------
# Measurements and rows
# ---------------------------------------------------------------------------
@dataclass
class Measure:
    """One timed command: wall seconds, peak RSS, S3 requests, or why it has no value."""

    seconds: float | None = None
    rss_mib: float | None = None
    requests: int | None = None
    by_method: dict[str, int] = field(default_factory=dict)
    share: float | None = None  # new bytes stored/sent as a share of the file (edits)
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """What a row must meet: kind 'ratio' (gart/dvc), 'seconds', 'mib' or 'share' (absolute,
    gart only; dvc shown beside it), 'info'."""

    kind: str
    limit: float
    text: str


def ratio(n: int) -> Target:
    return Target("ratio", 1 / n, f"<=1/{n}")


INFO = Target("info", 0.0, "-")


@dataclass
class Row:
    """One line of the final table; dvc is None for gart-only rows."""

    scenario: str
    label: str
    target: Target
    gart: list[Measure] = field(default_factory=list)
    dvc: list[Measure] | None = field(default_factory=list)
    req_target: float | None = None
    counts: bool = False  # show S3 request columns

    def __post_init__(self) -> None:
        self.counts = self.counts or self.req_target is not None

    def put(self, tool: str, m: Measure) -> None:
        if tool == "gart":
            self.gart.append(m)
        elif self.dvc is not None:
            self.dvc.append(m)


def _median(ms: list[Measure] | None, attr: str) -> float | None:
    """Median of attr over repeats; None if any repeat failed (a partial median would flatter)."""
    if not ms or any(m.error for m in ms):
        return None
    vals = [getattr(m, attr) for m in ms]
    if any(v is None for v in vals):
        return None
    return statistics.median(vals)


def _first_error(ms: list[Measure] | None) -> str | None:
    return next((m.error for m in ms or [] if m.error), None)


# ---------------------------------------------------------------------------
# Running commands
# ---------------------------------------------------------------------------
@dataclass
class Proc:
    """Outcome of one subprocess."""

    argv: list[str]
    code: int
    seconds: float
    rss_mib: float
    stdout: str
    stderr: str

    def tail(self, lines: int = 12) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


# GNU time reports the command's own peak RSS. wait4 on a child of this process would not
# do: the child's ru_maxrss starts from this (moto-laden) process's RSS, inherited at fork.
TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = CMD_TIMEOUT_S) -> Proc:
    """Run argv, timing wall clock; peak RSS from GNU time if present, else from wait4."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(prefix="rss-") as rss,
    ):
        wrapped = [TIME_BIN, "-f", "%M", "-o", rss.name, "--", *argv] if TIME_BIN else argv
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(
                wrapped,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # own group, so a timeout kills its children too
            )
        except OSError as e:
            return Proc(argv, 127, 0.0, 0.0, "", f"{argv[0]}: {e}")
        timer = threading.Timer(timeout, _kill_group, (p.pid,))
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        kib = ru.ru_maxrss  # fallback: an upper bound (see TIME_BIN)
        if TIME_BIN:
            lines = Path(rss.name).read_text().split()
            kib = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        out.seek(0)
        err.seek(0)
        return Proc(
            argv,
            p.returncode,
            seconds,
            kib / 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def bench_env(work: Path) -> dict[str, str]:
    """Environment shared by every tool: fixed git identity, moto credentials, no telemetry."""
    env = dict(os.environ)
    # Empty AWS files (botocore rejects /dev/null): the user's own must not change endpoints.
    empty = work / "aws-empty.ini"
    empty.write_text("")
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(k, None)
    env.update(
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        GIT_TERMINAL_PROMPT="0",
        DVC_NO_ANALYTICS="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        # No instance-metadata probes (each would wait for a timeout off EC2).
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


@dataclass
class Tool:
    """A CLI under test: its argv prefix and its command templates."""

    name: str
    exe: list[str]
    commands: dict[str, list[str]]

    def argv(self, key: str, **kw: str) -> list[str]:
        return self.exe + [a.format(**kw) for a in self.commands[key]]


class Context:
    """Run-wide settings: tools, dirs, repeats, environment."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = bench_env(self.work)
        self.data_dir = Path(args.data_dir)
        self.gart = Tool("gart", find_gart(args.gart), GART_COMMANDS)
        self.dvc = Tool("dvc", [str(args.dvc)], DVC_COMMANDS)
        self.heavy = args.repeat or HEAVY_DEFAULT_REPEAT
        self.light = args.repeat or LIGHT_DEFAULT_REPEAT
        self.failures: dict[tuple[str, str], str] = {}
        self.s3_details: list[str] = []
        self._fingerprints: dict[str, dict[str, str]] = {}

    def tools(self, rep: int) -> list[Tool]:
        """Alternate which tool goes first so neither always inherits the other's warm caches."""
        pair = [self.gart, self.dvc]
        return pair if rep % 2 == 0 else pair[::-1]

    def fingerprint(self, name: str) -> dict[str, str]:
        if name not in self._fingerprints:
            self._fingerprints[name] = datasets.fingerprint(datasets.ensure(name, self.data_dir))
        return self._fingerprints[name]

    def record_failure(self, tool: str, p: Proc) -> str:
        # Temp dirs and the exe path normalized, so one failure repeated across runs lists once.
        cmd = re.sub(
            rf"{re.escape(str(self.work))}/[^/ ]+", "$TMP", shlex.join([tool, *p.argv[1:]])
        )
        tail = p.tail()
        log.warning("    FAILED (exit %d): %s\n%s", p.code, cmd, _indent(tail, "      | "))
        self.failures.setdefault((tool, cmd), f"exit {p.code}\n{tail}")
        last = tail.splitlines()[-1] if tail else ""
        return f"exit {p.code}: {last}"[:200]


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def find_gart(override: str | None) -> list[str]:
    """gart's argv prefix; the venv's own script first, since a pyenv shim adds ~100 ms a call."""
    if override:
        return shlex.split(override)
    beside = Path(sys.executable).parent / "gart"
    if beside.exists():
        return [str(beside)]
    return [shutil.which("gart") or "gart"]


# ---------------------------------------------------------------------------
# A fresh repo per tool per repeat
# ---------------------------------------------------------------------------
class Session:
    """One tool in one fresh temp repo with a bare origin; steps after a failure are skipped."""

    def __init__(self, ctx: Context, tool: Tool, scenario: str) -> None:
        self.ctx, self.tool, self.scenario = ctx, tool, scenario
        self.base = Path(tempfile.mkdtemp(prefix=f"{scenario}-{tool.name}-", dir=ctx.work))
        self.repo = self.base / "repo"
        self.origin = self.base / "origin.git"
        self.broken: str | None = None
        try:
            self._create()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise

    def _create(self) -> None:
        self.git("init", "-q", "--bare", "-b", "main", str(self.origin), cwd=self.base)
        self.git("init", "-q", "-b", "main", str(self.repo), cwd=self.base)
        (self.repo / "README.md").write_text("benchmark repo\n")
        self.git("add", "README.md")
        self.git("commit", "-q", "-m", "initial")
        self.git("remote", "add", "origin", str(self.origin))
        self.setup("init")
        self.commit("tool init")

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.ctx.args.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def git(self, *args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
        """Harness git calls: a failure here is a bench bug, so it raises."""
        r = subprocess.run(
            ["git", *args],
            cwd=cwd or self.repo,
            env=self.ctx.env,
            input=stdin,
            capture_output=True,
            text=True,
        )
        if r.returncode:
            raise RuntimeError(f"git {shlex.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def commit(self, msg: str, cwd: Path | None = None) -> None:
        """Commit pointers and config, never the data itself or tool-local state."""
        # Listed and filtered here: `git add` with exclude pathspecs fails once the tool has
        # git-ignored data/ (git reports the excluded path as "ignored").
        listed = self.git(
            "ls-files", "-z", "--others", "--modified", "--deleted", "--exclude-standard", cwd=cwd
        )
        paths = [p for p in listed.split("\0") if p and not p.startswith(LOCAL_ONLY)]
        if paths:
            self.git(
                "--literal-pathspecs",
                "add",
                "-A",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                cwd=cwd,
                stdin="\0".join(paths),
            )
        self.git("commit", "-q", "--allow-empty", "-m", msg, cwd=cwd)

    def publish(self) -> None:
        """Commit and push the branch to the bare origin, so a clone sees the pointers."""
        self.commit("track data")
        self.git("push", "-q", "origin", "HEAD:refs/heads/main")

    def clone(self) -> Path:
        dest = self.base / "clone"
        self.git("clone", "-q", str(self.origin), str(dest), cwd=self.base)
        return dest

    def copy_data(self, dataset: str, rel: str = "data") -> None:
        datasets.copy_into(dataset, self.repo / rel, self.ctx.data_dir)

    def local_remote(self) -> None:
        remote = self.base / "remote"
        remote.mkdir()
        self.setup("remote_add", url=str(remote))

    def _exec(self, key: str, cwd: Path | None, kw: dict[str, str]) -> tuple[Proc, str | None]:
        p = run(self.tool.argv(key, **kw), cwd or self.repo, self.ctx.env)
        if p.code in OK_CODES.get(key, (0,)):
            return p, None
        return p, self.ctx.record_failure(self.tool.name, p)

    def setup(self, key: str, cwd: Path | None = None, required: bool = True, **kw: str) -> None:
        """An untimed tool step; if required and it fails, later steps report 'skipped'."""
        if self.broken:
            return
        log.info("    %s %s (setup)", self.tool.name, shlex.join(self.tool.argv(key, **kw)[1:]))
        _, err = self._exec(key, cwd, kw)
        if err and required:
            self.broken = f"{key}: {err}"

    def setup_argv(self, args: list[str]) -> None:
        """An untimed tool command given as arguments (not a command key); required."""
        if self.broken:
            return
        p = run(self.tool.exe + args, self.repo, self.ctx.env)
        if p.code:
            self.broken = f"{args[0]}: {self.ctx.record_failure(self.tool.name, p)}"

    def timed(self, key: str, cwd: Path | None = None, **kw: str) -> Measure:
        return self.timed_argv(self.tool.argv(key, **kw), cwd, key)

    def timed_argv(
        self, argv: list[str], cwd: Path | None = None, key: str = "", expect: str | None = None
    ) -> Measure:
        if self.broken:
            return Measure(error=f"skipped after {self.broken}")
        # Flush dirty pages first (untimed): writeback of the data copy or of the previous
        # step would otherwise land on whichever command runs next.
        os.sync()
        p = run(argv, cwd or self.repo, self.ctx.env)
        if p.code not in OK_CODES.get(key, (0,)):
            self.broken = f"{key or argv[1]}: {self.ctx.record_failure(self.tool.name, p)}"
            return Measure(error=self.broken)
        if expect is not None and expect not in p.stdout:
            p.stderr = f"stdout lacks {expect!r}; it began:\n{p.stdout[:600]}\nstderr:\n{p.stderr}"
            p.code = 0
            self.broken = f"{key or argv[1]}: {self.ctx.record_failure(self.tool.name, p)}"
            return Measure(error=self.broken)
        cmd = shlex.join(argv[1:])
        log.info("    %s %s: %.3f s, %.0f MiB", self.tool.name, cmd, p.seconds, p.rss_mib)
        # The output's first lines, so a status that saw nothing is noticed by eye.
        head = [ln.strip() for ln in (p.stdout or p.stderr).splitlines() if ln.strip()][:2]
        if head:
            log.info("      > %s", " / ".join(head)[:160])
        return Measure(seconds=p.seconds, rss_mib=p.rss_mib)

    def verify(self, dataset: str, where: Path, m: Measure) -> None:
        """A pull only counts if it produced exactly the dataset's bytes."""
        if m.error:
            return
        diff = datasets.compare(self.ctx.fingerprint(dataset), where)
        if diff:
            m.error = f"pulled data wrong: {diff}"
            log.warning("    %s pull verification failed: %s", self.tool.name, diff)


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------
def sc_small(ctx: Context) -> list[Row]:
    rows = {
        "add": Row("small", "add 20k files (cold)", ratio(3)),
        "status": Row("small", "status (no change)", ratio(4)),
        "status1": Row("small", "status after 1% rewritten", ratio(3)),
        "readd": Row("small", "re-add after 1% rewritten", ratio(3)),
    }
    for rep in range(ctx.heavy):
        for tool in ctx.tools(rep):
            log.info("  [small r%d] %s", rep, tool.name)
            with Session(ctx, tool, "small") as s:
                s.copy_data("small")
                rows["add"].put(tool.name, s.timed("add", path="data", name="small"))
                rows["status"].put(tool.name, s.timed("status"))
                n = datasets.rewrite_fraction(s.repo / "data")
                log.info("    rewrote %d files", n)
                rows["status1"].put(tool.name, s.timed("status"))
                rows["readd"].put(tool.name, s.timed("add", path="data", name="small"))
    return list(rows.values())


def _push_pull(ctx: Context, scenario: str, dataset: str, rows: dict[str, Row]) -> None:
    """Add (timed into rows['add'] if present), push to a local remote, clone, pull, verify."""
    for rep in range(ctx.heavy):
        for tool in ctx.tools(rep):
            log.info("  [%s r%d] %s", scenario, rep, tool.name)
            with Session(ctx, tool, scenario) as s:
                s.copy_data(dataset)
                s.local_remote()
                if "add" in rows:
                    rows["add"].put(tool.name, s.timed("add", path="data", name=dataset))
                else:
                    s.setup("add", path="data", name=dataset)
                s.publish()
                rows["push"].put(tool.name, s.timed("push"))
                clone = s.clone()
                m = s.timed("pull", cwd=clone, name=dataset)
                s.verify(dataset, clone / "data", m)
                rows["pull"].put(tool.name, m)


def dd_floor(ctx: Context, dataset: str) -> float:
    """Seconds `dd ... conv=fsync` takes to write the dataset's bytes once (the durable disk
    floor for adding, pushing or pulling them), measured now, in the work dir."""
    src = datasets.ensure(dataset, ctx.data_dir)
    out = Path(tempfile.mkdtemp(prefix="dd-", dir=ctx.work))
    try:
        os.sync()
        t0 = time.perf_counter()
        for i, path in enumerate(sorted(p for p in src.rglob("*") if p.is_file())):
            subprocess.run(["dd", f"if={path}", f"of={out / str(i)}", "bs=4M", "conv=fsync",
                            "status=none"], check=True)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)


def sc_large(ctx: Context) -> list[Row]:
    floor = statistics.median(dd_floor(ctx, "large") for _ in range(3))
    log.info("  dd conv=fsync floor for 2x256 MiB: %.3f s", floor)
    within = Target("seconds", FLOOR_LIMIT * floor, f"<{FLOOR_LIMIT}x dd ({floor:.2f} s)")
    rows = {
        "add": Row("large", "add 2x256 MiB (cold)", ratio(3)),
        "push": Row("large", "push to local remote", ratio(2)),
        "pull": Row("large", "pull from local remote (fresh clone)", ratio(2)),
    }
    _push_pull(ctx, "large", "large", rows)
    floor_row = Row("large", "dd conv=fsync of the same bytes (floor)", INFO, dvc=None)
    floor_row.put("gart", Measure(seconds=floor))
    out = list(rows.values()) + [floor_row]
    for key in ("add", "push", "pull"):
        row = Row("large", f"{rows[key].label} vs dd floor", within, dvc=None)
        row.gart = rows[key].gart
        out.append(row)
    return out


def _remote_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _bucket_bytes(server: S3Server, prefix: str) -> int:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET,
                                                                  Prefix=prefix):
        total += sum(o["Size"] for o in page.get("Contents", []))
    return total


def sc_edits(ctx: Context) -> list[Row]:
    """A 1 GiB file, then a new version after each kind of 1% edit: bytes stored and sent,
    and the time to push the new version to a local-directory remote and to S3 (moto)."""
    rows: dict[str, Row] = {}
    for edit in EDITS:
        what = f"1 GiB, {EDIT_LABELS[edit]}"
        rows[f"{edit}-bytes"] = Row("edits", f"{what}: new bytes stored/sent",
                                    Target("share", EDIT_BYTES_LIMIT,
                                           f"<={EDIT_BYTES_LIMIT:.0%} (dvc beside)"))
        rows[f"{edit}-local"] = Row("edits", f"{what}: push new version (local)",
                                    ratio(3))
        rows[f"{edit}-s3"] = Row("edits", f"{what}: push new version (S3)", ratio(10),
                                 counts=True)
    server = S3Server()
    try:
        for rep in range(ctx.heavy):
            for edit in EDITS:
                for tool in ctx.tools(rep):
                    log.info("  [edits r%d %s] %s", rep, edit, tool.name)
                    server.fresh_bucket()
                    with Session(ctx, tool, "edits") as s:
                        s.copy_data("huge")
                        local = s.base / "remote"
                        local.mkdir()
                        s.setup("remote_add", url=str(local))
                        s3 = ["remote", "add", "s3r", f"s3://{S3_BUCKET}/{tool.name}"]
                        s.setup_argv(s3)
                        key = "endpoint_url" if tool.name == "gart" else "endpointurl"
                        s.setup_argv(["remote", "modify", "s3r", key, server.endpoint])
                        s.setup("add", path="data", name="huge")
                        s.publish()
                        s.setup("push_to", remote="storage")
                        s.setup("push_to", remote="s3r")
                        before = _remote_bytes(local), _bucket_bytes(server, tool.name)
                        datasets.edit_one(s.repo / "data", edit)
                        s.setup("add", path="data", name="huge")
                        s.publish()
                        rows[f"{edit}-local"].put(tool.name, s.timed("push_to", remote="storage"))
                        server.app.take()
                        m = s.timed("push_to", remote="s3r")
                        c = server.app.take()
                        if not m.error:
                            m.requests, m.by_method = sum(c.values()), dict(c)
                        rows[f"{edit}-s3"].put(tool.name, m)
                        after = _remote_bytes(local), _bucket_bytes(server, tool.name)
                        size = datasets.SPECS["huge"].max_size
                        share = max(after[0] - before[0], after[1] - before[1]) / size
                        log.info("    %s new bytes: local %d, s3 %d (%.2f%%)", tool.name,
                                 after[0] - before[0], after[1] - before[1], share * 100)
                        rows[f"{edit}-bytes"].put(
                            tool.name, Measure(seconds=0.0, share=share) if not s.broken
                            else Measure(error=s.broken))
    finally:
        server.close()
    return list(rows.values())


def sc_remote(ctx: Context) -> list[Row]:
    rows = {
        "push": Row("remote", "push 20k files to local remote", ratio(3)),
        "pull": Row("remote", "pull 20k files (fresh clone)", ratio(3)),
    }
    _push_pull(ctx, "remote", "small", rows)
    return list(rows.values())


class CountingApp:
    """WSGI middleware counting requests by method, so each tool's S3 chatter is visible."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        with self.lock:
            self.counts[environ["REQUEST_METHOD"]] += 1
        return self.app(environ, start_response)

    def take(self) -> Counter[str]:
        with self.lock:
            c, self.counts = self.counts, Counter()
        return c


class S3Server:
    """moto's S3 on 127.0.0.1 (random port) in a thread of this process, behind CountingApp."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self.app = CountingApp(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fresh_bucket(self) -> None:
        """Wipe moto's state and recreate the bucket: each tool starts against an empty store."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(urllib.request.Request(f"{self.endpoint}/moto-api/reset", b"", method="POST"))
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=S3_BUCKET)
        self.app.take()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


def _counted(
    ctx: Context,
    server: S3Server,
    s: Session,
    row: Row,
    key: str,
    tag: str,
    cwd: Path | None = None,
) -> Measure:
    """Time one tool command and count the S3 requests it made."""
    server.app.take()
    m = s.timed(key, cwd=cwd, name="s3small")
    c = server.app.take()
    if not m.error:
        m.requests, m.by_method = sum(c.values()), dict(c)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        log.info("    %s requests: %d (%s)", s.tool.name, m.requests, detail)
        ctx.s3_details.append(f"{tag} {s.tool.name} {row.label}: {m.requests} ({detail})")
    row.put(s.tool.name, m)
    return m


def sc_s3(ctx: Context) -> list[Row]:
    rows = {
        "push": Row("s3", "push 2k files to S3 (moto)", ratio(5), req_target=S3_REQ_TARGET),
        # No request target here: DVC's no-op push already needs only ~3 requests.
        "noop": Row("s3", "push again (no-op)", ratio(4), counts=True),
        "pull": Row("s3", "pull 2k files (fresh clone)", ratio(5), req_target=S3_REQ_TARGET),
    }
    server = S3Server()
    log.info("  moto S3 at %s", server.endpoint)
    try:
        for rep in range(ctx.heavy):
            for tool in ctx.tools(rep):
                log.info("  [s3 r%d] %s", rep, tool.name)
                server.fresh_bucket()
                with Session(ctx, tool, "s3") as s:
                    s.copy_data("s3small")
                    s.setup("add", path="data", name="s3small")
                    s.setup("remote_add", url=f"s3://{S3_BUCKET}/{tool.name}")
                    s.setup("remote_endpoint", endpoint=server.endpoint)
                    s.publish()

                    _counted(ctx, server, s, rows["push"], "push", f"r{rep}")
                    _counted(ctx, server, s, rows["noop"], "push", f"r{rep}")
                    clone = s.clone()
                    # Re-applied in the clone in case the endpoint lives in local-only config.
                    s.setup("remote_endpoint", cwd=clone, endpoint=server.endpoint)
                    m = _counted(ctx, server, s, rows["pull"], "pull", f"r{rep}", cwd=clone)
                    s.verify("s3small", clone / "data", m)
    finally:
        server.close()
    return list(rows.values())


def _manifest_fields(repo: Path, name: str) -> tuple[str, int, int]:
    """Digest, size and count from gart's manifest if it wrote one, else stand-ins."""
    fields = {"digest": "sha256:" + hashlib.sha256(name.encode()).hexdigest()}
    path = repo / ".gart" / "artifacts" / f"{name}.yaml"
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key in ("digest", "size", "count"):
                fields[key] = value.strip()
    return fields["digest"], int(fields.get("size", 0)), int(fields.get("count", 0))


def make_tags(s: Session, name: str, count: int) -> int:
    """Create annotated tags name@v0..v<count-1> on HEAD with one git fast-import process."""
    existing = set(s.git("tag", "-l", f"{name}@v*").split())
    head = s.git("rev-parse", "HEAD").strip()
    digest, size, n_files = _manifest_fields(s.repo, name)
    parts = []
    for v in range(count):
        tag = f"{name}@v{v}"
        if tag in existing:  # keep the one gart published itself
            continue
        msg = tag_message(name, v, digest, size, n_files).encode()
        parts.append(
            f"tag {tag}\nfrom {head}\n"
            f"tagger bench <bench@example.invalid> {1795817700 + v} +0000\n"
            f"data {len(msg)}\n{msg.decode()}\n"
        )
    s.git("fast-import", "--quiet", stdin="".join(parts))
    return len(parts)


def _light_rows(
    ctx: Context, s: Session, label: str, args: list[str], expect: str | None, target: Target
) -> list[Row]:
    """Rows for a gart-only command run ctx.light times in one repo: the first call on its
    own (it may build caches; in CI every call is a first one), then the median of the rest."""
    first = Row(s.scenario, f"{label}, first call", target, dvc=None)
    rest = Row(s.scenario, f"{label}, median of next {ctx.light - 1}", target, dvc=None)
    for i in range(ctx.light):
        s.broken = None  # each command stands alone: earlier failures skip nothing
        m = s.timed_argv(ctx.gart.exe + args, key=args[0], expect=expect)
        (first if i == 0 else rest).put("gart", m)
        if m.error:  # a failing command will not start working on the next repeat
            break
    return [first, rest] if ctx.light > 1 else [first]


def sc_tags(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    s = Session(ctx, ctx.gart, "tags")
    with s:
        s.copy_data("s3small")
        s.local_remote()
        s.setup("add", path="data", name=TAGS_NAME)
        s.publish()
        s.setup("push", required=False)  # publishes a real v0 if gart can; the rest are synthetic
        t0 = time.perf_counter()
        made = make_tags(s, TAGS_NAME, TAGS_COUNT)
        log.info("  created %d tags in %.2f s", made, time.perf_counter() - t0)
        for refs in ("loose", "packed"):
            if refs == "packed":
                s.git("pack-refs", "--all")
            for label, args, expect in TAGS_COMMANDS:
                rows += _light_rows(
                    ctx,
                    s,
                    f"{label} ({TAGS_COUNT} tags, {refs} refs)",
                    args,
                    expect,
                    Target("seconds", TAGS_LIMIT_S, f"<{TAGS_LIMIT_S} s"),
                )
    return rows


def sc_lineage(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    with Session(ctx, ctx.gart, "lineage") as s:
        s.local_remote()
        digests: dict[tuple[str, int], str] = {}
        for v in range(LINEAGE_VERSIONS):
            weights = s.repo / LINEAGE_NAME / "weights.bin"
            weights.parent.mkdir(exist_ok=True)
            weights.write_bytes(f"{LINEAGE_NAME} v{v}\n".encode())
            s.setup("add", path=LINEAGE_NAME, name=LINEAGE_NAME)
            s.commit(f"{LINEAGE_NAME} v{v}")
            s.setup("push")
            if not s.broken:
                digests[(LINEAGE_NAME, v)] = _manifest_fields(s.repo, LINEAGE_NAME)[0]
        t0 = time.perf_counter()
        datasets.write_runs(s.repo / ".gart" / "runs", LINEAGE_RUNS, digests)
        s.commit("runs")
        log.info("  wrote and committed %d runs in %.2f s", LINEAGE_RUNS, time.perf_counter() - t0)
        for label, args, expect in LINEAGE_COMMANDS:
            rows += _light_rows(
                ctx,
                s,
                f"{label} ({LINEAGE_RUNS} runs)",
                args,
                expect,
                Target("seconds", LINEAGE_LIMIT_S, f"<{LINEAGE_LIMIT_S} s"),
            )
    return rows


def sc_memory(ctx: Context) -> list[Row]:
    n = datasets.SPECS["tiny"].files
    rss = Row(
        "memory",
        f"add {n // 1000}k tiny files: peak RSS",
        Target("mib", MEMORY_LIMIT_MIB, f"<{MEMORY_LIMIT_MIB:.0f} MiB"),
        dvc=None,
    )
    secs = Row("memory", f"add {n // 1000}k tiny files: time", INFO, dvc=None)
    for rep in range(ctx.heavy):
        log.info("  [memory r%d] gart", rep)
        with Session(ctx, ctx.gart, "memory") as s:
            s.copy_data("tiny")
            m = s.timed("add", path="data", name="tiny")
            rss.put("gart", m)
            secs.put("gart", m)
    return [rss, secs]


SCENARIO_FUNCS: dict[str, Callable[[Context], list[Row]]] = {
    "small": sc_small,
    "large": sc_large,
    "remote": sc_remote,
    "s3": sc_s3,
    "tags": sc_tags,
    "lineage": sc_lineage,
    "memory": sc_memory,
    "edits": sc_edits,
}
DATASETS_FOR = {
    "small": ["small"],
    "large": ["large"],
    "remote": ["small"],
    "s3": ["s3small"],
    "tags": ["s3small"],
    "lineage": [],
    "memory": ["tiny"],
    "edits": ["huge"],
}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
HEADER = [
    "scenario",
    "gart s",
    "dvc s",
    "ratio",
    "target",
    "pass/fail",
    "gart req",
    "dvc req",
    "req ratio",
    "gart MiB",
    "dvc MiB",
]


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        attr = {"mib": "rss_mib", "share": "share"}.get(r.target.kind, "seconds")
        g, d = _median(r.gart, attr), _median(r.dvc, attr)
        rat = g / d if g is not None and d else None
        gq, dq = _median(r.gart, "requests"), _median(r.dvc, "requests")
        rq = gq / dq if gq is not None and dq else None
        verdict = "-"
        if r.target.kind == "ratio":
            verdict = "n/a" if rat is None else ("pass" if rat <= r.target.limit else "FAIL")
            if r.req_target is not None and verdict != "n/a":
                if rq is None:
                    verdict = "n/a"
                elif rq > r.req_target:
                    verdict = "FAIL(req)" if verdict == "pass" else "FAIL(+req)"
        elif r.target.kind in ("seconds", "mib", "share"):
            verdict = "n/a" if g is None else ("pass" if g < r.target.limit else "FAIL")
        target = r.target.text
        if r.req_target is not None:
            target += f", req<=1/{round(1 / r.req_target)}"
        unit = {"rss_mib": " MiB", "share": ""}.get(attr, "")
        spec = {"rss_mib": ".0f", "share": ".2%"}.get(attr, ".3f")
        out.append(
            [
                f"{r.scenario}: {r.label}",
                _fmt(g, spec) + (unit if g is not None else ""),
                "-" if r.dvc is None else _fmt(d, spec) + (unit if d is not None else ""),
                "-" if r.dvc is None else _fmt(rat),
                target,
                verdict,
                _fmt(gq, ".0f") if r.counts else "",
                _fmt(dq, ".0f") if r.counts else "",
                _fmt(rq) if r.counts else "",
                _fmt(_median(r.gart, "rss_mib"), ".0f"),
                "-" if r.dvc is None else _fmt(_median(r.dvc, "rss_mib"), ".0f"),
            ]
        )
    return out


def render_text(rows: list[Row]) -> str:
    body = table_rows(rows)
    widths = [max(len(x) for x in col) for col in zip(HEADER, *body, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(HEADER), line(["-" * w for w in widths])] + [line(b) for b in body])


def render_markdown(rows: list[Row], ctx: Context, info: dict[str, str]) -> str:
    body = table_rows(rows)
    md = ["# gart vs DVC benchmark", ""]
    md += [f"- **{k}**: {v}" for k, v in info.items()]
    md += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    md += [
        "",
        "Times are wall-clock medians of the repeats, including process start-up. Each tool gets",
        "a fresh git repo per repeat (`git init`, a commit, tool init) with the dataset copied in",
        "untimed just before, so 'cold' means no tool cache or hash state, with the OS page cache",
        "warm for both; `sync` runs (untimed) before every timed command. Pulls run in a fresh",
        "`git clone` of a bare origin and are checked byte for byte against the dataset. Peak",
        "RSS is GNU time's %M (the largest process in the tree). S3 is moto in this process.",
    ]
    if ctx.s3_details:
        md += ["", "## S3 requests by method", ""] + [f"- {d}" for d in ctx.s3_details]
    if ctx.failures:
        md += ["", "## Failures", ""]
        for (tool, cmd), text in ctx.failures.items():
            md += [f"- `{cmd}` ({tool})", "", "```", text, "```", ""]
    return "\n".join(md) + "\n"


def _version(argv: list[str], env: dict[str, str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"n/a ({e})"
    return (r.stdout.strip() or r.stderr.strip()).splitlines()[-1] if r.returncode == 0 else "n/a"


def machine_info(ctx: Context) -> dict[str, str]:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    fs = subprocess.run(
        ["findmnt", "-no", "FSTYPE", "-T", str(ctx.work)], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": shlex.join(["python", *sys.argv]),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": _version(["git", "--version"], ctx.env),
        "dvc": _version(ctx.dvc.exe + ["--version"], ctx.env),
        "gart": _version(ctx.gart.exe + ["--version"], ctx.env) + f" ({shlex.join(ctx.gart.exe)})",
        "work dir": f"{ctx.work} ({fs or '?'})",
        "peak RSS from": TIME_BIN or "wait4 ru_maxrss (upper bound: includes bench.py's RSS)",
    }


# ---------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios out of {','.join(SCENARIOS)}",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=0,
        help=f"repeats per row, median reported (default {HEAVY_DEFAULT_REPEAT} for "
        f"heavy scenarios, {LIGHT_DEFAULT_REPEAT} for tags/lineage)",
    )
    ap.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    ap.add_argument(
        "--data-dir", default=str(datasets.DEFAULT_DATA_DIR), help="cache of generated datasets"
    )
    ap.add_argument(
        "--work-dir",
        default=os.environ.get("GART_BENCH_WORK", "/tmp/gart-bench-work"),
        help="where temp repos are made",
    )
    ap.add_argument("--keep", action="store_true", help="keep temp repos for inspection")
    ap.add_argument("--gart", help="gart argv prefix (default: gart beside this python)")
    ap.add_argument(
        "--dvc",
        type=Path,
        default=HERE / ".venv-dvc" / "bin" / "dvc",
        help="dvc executable (default: benchmarks/.venv-dvc, made by setup_dvc.sh)",
    )
    ap.add_argument("-q", "--quiet", action="store_true", help="only the final table")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s) {','.join(bad)}; choose from {','.join(SCENARIOS)}")
    args.only = only
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if not args.dvc.exists() and args.dvc == HERE / ".venv-dvc" / "bin" / "dvc":
        log.info("creating benchmarks/.venv-dvc (one-off)")
        subprocess.run(["bash", str(HERE / "setup_dvc.sh")], check=True)
    ctx = Context(args)
    os.environ.update(ctx.env)  # boto3 in this process (bucket creation) uses the same creds
    info = machine_info(ctx)
    for k, v in info.items():
        log.info("%s: %s", k, v)

    for name in sorted({d for sc in args.only for d in DATASETS_FOR[sc]}):
        t0 = time.perf_counter()
        datasets.ensure(name, ctx.data_dir)
        log.info("dataset %s ready (%.1f s)", name, time.perf_counter() - t0)

    rows: list[Row] = []
    for sc in args.only:
        log.info("== %s", sc)
        t0 = time.perf_counter()
        try:
            rows += SCENARIO_FUNCS[sc](ctx)
        except Exception as e:  # one broken scenario must not lose the others' figures
            log.error("scenario %s crashed:\n%s", sc, traceback.format_exc())
            rows.append(Row(sc, f"harness error: {e}"[:80], INFO, [Measure(error=str(e))]))
        log.info("== %s done in %.0f s", sc, time.perf_counter() - t0)

    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = render_text(rows)
    print(text)
    if ctx.failures:
        print("\nfailed commands (stderr tail):")
        for (tool, cmd), tail in ctx.failures.items():
            print(f"- [{tool}] {cmd}\n{_indent(tail, '    ')}")
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(rows, ctx, info))
        print(f"\nmarkdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
