#!/usr/bin/env python3
"""The fleet test's harness (tests/fleet/README.md): many C, Go and Python
worker processes share one keychain, first in a file, then in etcd, while
the harness SIGKILLs random workers (and, for etcd, stops and restarts one
cluster member); then every ciphertext any worker printed must decrypt in a
fresh process of each language, and the final keychain must account for
every key.

Run by tests/fleet/run.sh, which builds the workers and passes their
commands. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

LANGS = ("c", "go", "python")


class Results:
    """Named checks: each passes or fails once, with a line of output."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok   {name}" + (f"  ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok


@dataclass
class Worker:
    lang: str
    name: str
    out: Path
    proc: subprocess.Popen
    started: float
    killed: bool = False
    code: Optional[int] = None


@dataclass
class Parsed:
    """What one worker printed (complete lines only)."""

    records: List[str] = field(default_factory=list)  # S/E/W lines, verbatim
    rotations: List[Tuple[int, int, bool]] = field(default_factory=list)  # key_id, version, automatic
    errors: List[Tuple[str, str]] = field(default_factory=list)  # kind, operation
    ready: bool = False
    done: bool = False
    malformed: int = 0
    cut_short: int = 0


def key_id_of(kind: str, ct: bytes) -> Optional[int]:
    """The key_id a ciphertext names: bytes 1..5 of a sealed ciphertext or
    a wrapped key, bytes 5..9 of an envelope blob (inside its wrapped DEK)."""
    if kind in ("S", "W") and len(ct) >= 5 and ct[0] == 1:
        return int.from_bytes(ct[1:5], "big")
    if kind == "E" and len(ct) >= 9 and ct[4] == 1:
        return int.from_bytes(ct[5:9], "big")
    return None


def parse(path: Path) -> Parsed:
    p = Parsed()
    data = path.read_bytes().decode("ascii", "replace")
    lines = data.split("\n")
    if lines and lines[-1] != "":
        p.cut_short += 1  # killed mid-line: not a whole line, not counted
    for line in lines[:-1]:
        f = line.split()
        if not f:
            continue
        try:
            if f[0] in ("S", "E") and len(f) == 5:
                bytes.fromhex(f[2]), bytes.fromhex(f[3])
                if key_id_of(f[0], bytes.fromhex(f[4])) != int(f[1]):
                    p.malformed += 1
                    continue
                p.records.append(line)
            elif f[0] == "W" and len(f) == 6:
                bytes.fromhex(f[3]), bytes.fromhex(f[4])
                if key_id_of("W", bytes.fromhex(f[5])) != int(f[1]):
                    p.malformed += 1
                    continue
                p.records.append(line)
            elif f[0] == "R" and len(f) == 4:
                p.rotations.append((int(f[1]), int(f[2]), f[3] == "auto"))
            elif f[0] == "X" and len(f) == 3:
                p.errors.append((f[1], f[2]))
            elif f[0] == "READY":
                p.ready = True
            elif f[0] == "DONE":
                p.done = True
            else:
                p.malformed += 1
        except ValueError:
            p.malformed += 1
    return p


def count_records(paths: List[Path]) -> int:
    """Ciphertext lines printed so far, in all of paths."""
    return sum(len(parse(p).records) for p in paths if p.exists())


class Outage:
    """One etcd member stopped at `stop_at` (or later) and started again
    `down_for` seconds after it stopped (scripts/peers.sh etcd-member),
    driven by step() from the harness loop without blocking it."""

    def over(self) -> bool:
        return self.state in ("restarted", "unhealthy") or bool(self.failed)

    def __init__(self, peers: str, endpoints: str, member: int, stop_at: float, down_for: float, log) -> None:
        self.peers, self.member, self.stop_at, self.down_for, self.log = peers, member, stop_at, down_for, log
        self.start_at = 0.0
        self.endpoints = endpoints
        self.proc: Optional[subprocess.Popen] = None
        self.health_deadline = 0.0
        self.state = "up"
        self.failed = ""
        self.records_at_stop = self.records_at_start = 0

    def _run(self, action: str) -> subprocess.Popen:
        return subprocess.Popen(["bash", self.peers, "etcd-member", action, str(self.member)],
                                stdout=self.log, stderr=self.log)

    def _done(self, what: str) -> bool:
        if self.proc is None or self.proc.poll() is None:
            return False
        if self.proc.returncode != 0:
            self.failed = self.failed or (f"{what} member {self.member}: exit {self.proc.returncode}; "
                                          f"last lines of its log: {self._log_tail()!r}")
        return True

    def _log_tail(self) -> str:
        """The end of what scripts/peers.sh etcd-member wrote (it says why)."""
        try:
            self.log.flush()
            with open(self.log.name, "rb") as f:
                return f.read()[-600:].decode("utf-8", "replace")
        except OSError as e:
            return f"(log unreadable: {e})"

    def step(self, now: float, outs: List[Path]) -> None:
        if self.state == "up" and now >= self.stop_at:
            self.proc, self.state = self._run("stop"), "stopping"
        elif self.state == "stopping" and self._done("stop"):
            self.records_at_stop = count_records(outs)
            self.state, self.start_at = "down", now + self.down_for
        elif self.state == "down" and now >= self.start_at:
            self.records_at_start = count_records(outs)
            self.proc, self.state = self._run("start"), "starting"
        elif self.state == "starting" and self._done("start"):
            # etcd-member start returns once the member's port is open; the
            # outage is over when every member answers a linearizable
            # health check again (polled, at most 120 s).
            self.state, self.health_deadline, self.proc = "healing", now + 120, self._health()
        elif self.state == "healing" and self.proc is not None and self.proc.poll() is not None:
            if self.proc.returncode == 0:
                self.state = "restarted"
            elif now > self.health_deadline:
                self.failed = self.failed or f"the cluster was not healthy 120 s after member {self.member} started"
                self.state = "unhealthy"
            else:
                self.proc = self._health()

    def _health(self) -> subprocess.Popen:
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.Popen(["etcdctl", f"--endpoints={self.endpoints}", "--dial-timeout=1s",
                                 "--command-timeout=2s", "endpoint", "health"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def finish(self) -> None:
        """Leaves the member running, whatever happened."""
        if self.state == "healing" and self.proc is not None:
            self.proc.wait()
            while self.state == "healing":
                self.step(time.monotonic(), [])
                time.sleep(0.2)
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.failed = self.failed or f"member {self.member}: etcd-member did not finish"
        if self.state in ("stopping", "down"):
            if self.state == "down":
                self.records_at_start = self.records_at_stop
            subprocess.run(["bash", self.peers, "etcd-member", "start", str(self.member)],
                           stdout=self.log, stderr=self.log, timeout=180)
            self.failed = self.failed or f"member {self.member} was still down at the end of the run"
            self.state = "started late"


class Fleet:
    def __init__(self, args: argparse.Namespace, res: Results) -> None:
        self.args = args
        self.res = res
        self.cmd = {"c": shlex.split(args.c), "go": shlex.split(args.go), "python": shlex.split(args.python)}
        self.rng = random.Random(args.seed)
        self.work = Path(args.work)

    def start(self, lang: str, location: str, n: int, outdir: Path, seconds: float, stop_file: Path) -> Worker:
        name = f"{lang}{n}"
        out = outdir / f"{name}.out"
        argv = self.cmd[lang] + [
            "run",
            location,
            str(self.args.identity),
            name,
            str(self.rng.randrange(1, 2**62)),
            f"{seconds:.2f}",
            str(self.args.max_ops),
            str(self.args.rotate_permille),
            str(self.args.max_per_key),
            str(self.args.block),
        ]
        with open(out, "wb") as f, open(outdir / f"{name}.err", "wb") as err:
            proc = subprocess.Popen(argv, stdout=f, stderr=err, stdin=subprocess.DEVNULL,
                                    env=dict(os.environ, KS_FLEET_STOP_FILE=str(stop_file),
                                             KS_FLEET_RATE=str(self.args.rate)))
        return Worker(lang, name, out, proc, time.monotonic())

    def run_pass(self, label: str, location: str, member_restart: bool) -> Dict[str, int]:
        """One bounded run of the fleet on location; returns its counts."""
        res, args, rng = self.res, self.args, self.rng
        outdir = self.work / label
        outdir.mkdir(parents=True, exist_ok=True)
        print(f"== {label}: {location}, {args.workers} workers, {args.seconds:.0f} s", flush=True)
        t0 = time.monotonic()
        end = t0 + args.seconds
        stop_file = outdir / "stop"
        workers: List[Worker] = []
        serial = collections.Counter()
        live: List[Worker] = []

        def spawn(lang: str) -> None:
            # Workers end when the harness creates stop_file; SECONDS is only
            # their own upper bound, should the harness die.
            w = self.start(lang, location, serial[lang], outdir, args.seconds + 300, stop_file)
            serial[lang] += 1
            workers.append(w)
            live.append(w)

        for i in range(args.workers):
            spawn(LANGS[i % len(LANGS)])
        kills = early = 0
        next_kill = t0 + rng.uniform(0.3, 1.5)
        # etcd: two outages of two different members, one after the other:
        # the first stops at a fifth of the run, the second at three fifths
        # or once the first is over; each lasts a fifth of the run.
        member_log = open(outdir / "member.log", "wb")
        outages: List[Outage] = []
        if member_restart:
            a, b = rng.sample([1, 2, 3], 2)
            outages = [
                Outage(args.peers, args.etcd, a, t0 + args.seconds * 0.2, args.seconds * 0.2, member_log),
                Outage(args.peers, args.etcd, b, t0 + args.seconds * 0.6, args.seconds * 0.2, member_log),
            ]
        stopped_at: Optional[float] = None
        try:
            while True:
                now = time.monotonic()
                for w in list(live):
                    if w.proc.poll() is not None:
                        w.code = w.proc.returncode
                        live.remove(w)
                        # A worker that ended early is replaced (and reported
                        # below), up to 10 times a pass.
                        if stopped_at is None and early < 10:
                            early += 1
                            spawn(w.lang)
                # The work ends at `end`, or later when an outage is not
                # over yet (at most 180 s later): the workers are told to
                # stop, and may take `grace` seconds to do so.
                if stopped_at is None and now >= end and (
                    all(o.over() for o in outages) or now >= end + 180
                ):
                    stop_file.touch()
                    stopped_at = now
                if stopped_at is not None and not live:
                    break
                if stopped_at is not None and now >= stopped_at + args.grace:
                    for w in live:
                        w.proc.kill()
                        w.proc.wait()
                        w.code = w.proc.returncode
                        res.check(f"{label}: worker {w.name} stopped when told", False, "still running; killed")
                    live.clear()
                    break
                if stopped_at is None and now >= next_kill and live and kills < args.max_kills:
                    victim = rng.choice(live)
                    victim.proc.send_signal(signal.SIGKILL)
                    victim.proc.wait()
                    victim.killed = True
                    victim.code = victim.proc.returncode
                    live.remove(victim)
                    kills += 1
                    spawn(victim.lang)
                    next_kill = now + rng.uniform(0.2, 1.2)
                if stopped_at is None:
                    for o in outages:
                        # One outage at a time: the next waits for the last.
                        o.step(now, [w.out for w in workers])
                        if not o.over():
                            break
                time.sleep(0.05)  # the harness's poll interval, not a synchronisation
        except BaseException:
            # Interrupted (^C, a bug here): leave no worker running and no
            # member stopped.
            for w in live:
                w.proc.kill()
                w.proc.wait()
            for o in outages:
                o.finish()
            raise
        for o in outages:
            o.finish()
        member_log.close()
        run_seconds = time.monotonic() - t0
        return self.judge(label, location, outdir, workers, kills, run_seconds, outages)

    def judge(self, label: str, location: str, outdir: Path, workers: List[Worker], kills: int,
              run_seconds: float, outages: List["Outage"]) -> Dict[str, int]:
        res, args = self.res, self.args
        parsed = {w.name: parse(w.out) for w in workers}
        records: List[str] = []
        rotations: List[Tuple[int, int, bool, str]] = []
        errors: collections.Counter = collections.Counter()
        per_lang: collections.Counter = collections.Counter()
        malformed = cut = 0
        for w in workers:
            p = parsed[w.name]
            records += p.records
            per_lang[w.lang] += len(p.records)
            rotations += [(k, v, a, w.name) for k, v, a in p.rotations]
            for kind, op in p.errors:
                errors[(kind, op)] += 1
            malformed += p.malformed
            cut += p.cut_short
        rec_path = outdir / "records.txt"
        rec_path.write_text("".join(r + "\n" for r in records), encoding="ascii")

        # Workers: every one not killed ended by itself, cleanly (or could
        # not open the keychain with an allowed error, counted below).
        allowed = set((args.allow_errors if outages else args.allow_errors_file).split(",")) - {""}

        def clean(w: Worker) -> bool:
            p = parsed[w.name]
            if w.code == 0 and p.done:
                return True
            return w.code == 3 and len(p.errors) == 1 and p.errors[0][1] == "open" and p.errors[0][0] in allowed

        bad = [
            f"{w.name} exit {w.code}" + ("" if parsed[w.name].done else " (no DONE)")
            for w in workers
            if not w.killed and not clean(w)
        ]
        res.check(f"{label}: every worker not killed finished cleanly", not bad, ", ".join(bad[:8]))
        res.check(f"{label}: every output line well formed, key_id = the ciphertext's", malformed == 0,
                  f"{malformed} malformed")
        # etcd pass: Unavailable is allowed (and counted): while members go
        # away a call may run out of time, and the keychain gives up rather
        # than hand out anything under unstored state. Every other error,
        # and any error at all in the file pass, fails the pass.
        unexpected = {k: n for k, n in errors.items() if k[0] not in allowed}
        messages = []
        for w in workers:
            err_path = w.out.with_suffix(".err")
            if err_path.exists():
                messages += [l for l in err_path.read_text(errors="replace").splitlines() if l.strip()][:3]
        res.check(f"{label}: no errors" + (f" but {', '.join(sorted(allowed))}" if allowed else ""), not unexpected,
                  ", ".join(f"{k[0]} in {k[1]} x{n}" for k, n in unexpected.items())
                  + (f"; first messages: {messages[:5]}" if unexpected else "")
                  if unexpected else f"{sum(errors.values())} allowed errors")

        # Every ciphertext decrypts in a fresh process of each language.
        listings: Dict[str, List[str]] = {}
        for lang in LANGS:
            argv = self.cmd[lang] + ["check", location, str(args.identity), str(rec_path)]
            try:
                cp = subprocess.run(argv, capture_output=True, text=True, timeout=args.check_timeout)
                out, code, err = cp.stdout, cp.returncode, cp.stderr
            except subprocess.TimeoutExpired:
                out, code, err = "", -1, f"timed out after {args.check_timeout:.0f} s"
            summary = [l for l in out.splitlines() if l.startswith("checked ")]
            bads = [l for l in out.splitlines() if l.startswith("BAD ")]
            ok = code == 0 and summary == [f"checked {len(records)} failed 0"]
            res.check(f"{label}: all {len(records)} ciphertexts decrypt in a fresh {lang} process", ok,
                      f"exit {code}; {summary}; {bads[:5]}; {err.strip()[-300:]}")
            listings[lang] = [l for l in out.splitlines() if l.startswith("K ")]
        ref = listings["python"]
        res.check(f"{label}: C, Go and Python list the same keys",
                  all(listings[l] == ref for l in LANGS) and len(ref) > 0,
                  "; ".join(f"{l}: {len(listings[l])} keys" for l in LANGS))

        # The final keychain (as Python lists it).
        keys = {}
        for l in ref:
            _, kid, ver, purpose, status, usage, primary = l.split()
            keys[int(kid)] = (int(ver), purpose, status, int(usage), primary == "1")
        enc = {k: v for k, v in keys.items() if v[1] == "encrypt"}
        der = [k for k, v in keys.items() if v[1] == "derive"]
        per_key: collections.Counter = collections.Counter()
        for r in records:
            per_key[int(r.split()[1])] += 1
        seen = set(per_key) | {k for k, _, _, _ in rotations}
        missing = sorted(seen - set(keys))
        res.check(f"{label}: every key_id in any ciphertext or rotation is in the final keychain", not missing,
                  f"missing {missing[:10]}")
        over = {k: n for k, n in per_key.items() if n > args.max_per_key}
        res.check(f"{label}: at most {args.max_per_key} ciphertexts under any key (no usage block owned twice)",
                  not over, f"over the limit: {over}")
        under = {k: (n, keys[k][3]) for k, n in per_key.items() if k in keys and keys[k][3] < n}
        res.check(f"{label}: each key's stored usage covers its ciphertexts", not under,
                  f"key: (ciphertexts, usage) {under}")
        twice = [k for k, n in collections.Counter(k for k, _, _, _ in rotations).items() if n > 1]
        res.check(f"{label}: every rotation reported by exactly one worker", not twice, f"reported twice: {twice}")
        versions = sorted(v[0] for v in enc.values())
        gaps = sorted(set(range(1, len(versions) + 1)) ^ set(versions))
        res.check(f"{label}: encryption key versions are 1..n, each once",
                  versions == list(range(1, len(versions) + 1)),
                  f"n = {len(versions)}" + (f"; missing or repeated: {gaps[:10]}" if gaps else ""))
        # Keys created = the new keychain's two (one encryption, one
        # derivation key) + every rotation. A worker killed between storing
        # its rotation and printing the event leaves a key nobody reported:
        # at most one per kill, since a worker rotates on one thread.
        unreported = len(enc) - 1 - len(rotations)
        res.check(f"{label}: keys = 2 + rotations reported (+ at most one unreported per kill)",
                  len(der) == 1 and 0 <= unreported <= kills,
                  f"{len(enc)} encryption + {len(der)} derivation keys, {len(rotations)} rotations reported, "
                  f"{kills} kills, {unreported} unreported")
        auto = sum(1 for _, _, a, _ in rotations if a)
        manual = len(rotations) - auto
        # The run exercised what it is meant to.
        langs_ok = all(per_lang[l] > 0 for l in LANGS)
        res.check(f"{label}: the fleet did its work (all languages encrypted, kills, automatic and manual rotations)",
                  langs_ok and kills > 0 and auto > 0 and manual > 0 and len(records) >= 100,
                  f"per language {dict(per_lang)}, {kills} kills, {auto} automatic, {manual} manual")
        for o in outages:
            res.check(f"{label}: etcd member {o.member} stopped and started again mid-run",
                      o.state == "restarted" and not o.failed, o.failed or o.state)
            during = o.records_at_start - o.records_at_stop
            res.check(f"{label}: the fleet kept working while member {o.member} was down", during > 0,
                      f"{during} ciphertexts printed during the outage")
        tmp_left = len(list(Path(location).parent.glob(".*.tmp-*"))) if not outages else 0
        counts = {
            "processes": len(workers),
            "kills": kills,
            "ciphertexts": len(records),
            "keys": len(keys),
            "rotations_automatic": auto,
            "rotations_manual": manual,
            "unreported_rotations": unreported,
            "member_restarts": sum(1 for o in outages if o.state == "restarted"),
            "errors": sum(errors.values()),
            "lines_cut_by_kill": cut,
            "seconds": int(run_seconds),
        }
        if not outages:
            counts["temp_files_left_by_kills"] = tmp_left
        print(f"   {label}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
              + f"; ciphertexts per language {dict(per_lang)}"
              + (f"; errors {dict(errors)}" if errors else ""), flush=True)
        if messages:
            print(f"   {label}: first worker messages: {messages[:3]}", flush=True)
        return counts


def on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--c", required=True, help="the C worker's command")
    ap.add_argument("--go", required=True, help="the Go worker's command")
    ap.add_argument("--python", required=True, help="the Python worker's command")
    ap.add_argument("--identity", required=True, help="an age identity file")
    ap.add_argument("--work", required=True, help="a work directory")
    ap.add_argument("--peers", required=True, help="scripts/peers.sh")
    ap.add_argument("--etcd", default="", help="etcd endpoints (host:port,...); empty: no etcd pass")
    ap.add_argument("--etcd-prefix", default="/keystrata-test/")
    ap.add_argument("--require-etcd", action="store_true", help="fail (not skip) the etcd pass without --etcd")
    ap.add_argument("--passes", default="file,etcd", help="which passes to run (file, etcd)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each pass")
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-per-key", type=int, default=64)
    ap.add_argument("--block", type=int, default=4)
    ap.add_argument("--rotate-permille", type=int, default=3)
    ap.add_argument("--max-ops", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=150.0,
                    help="operations per second per worker, at most (0: unlimited). The keychain grows by a key "
                         "every 64 encryptions and etcd keeps every revision of it, so its history grows with "
                         "the square of the work: this keeps one pass to a few hundred keys")
    ap.add_argument("--max-kills", type=int, default=60)
    ap.add_argument("--allow-errors", default="Unavailable",
                    help="comma-separated error kinds a worker may meet in the etcd pass (counted, not failed)")
    ap.add_argument("--allow-errors-file", default="",
                    help="the same for the file pass (default: none)")
    ap.add_argument("--grace", type=float, default=60.0, help="how long workers may overrun a pass")
    ap.add_argument("--check-timeout", type=float, default=300.0)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    print(f"fleet: seed {args.seed} (KS_FLEET_SEED={args.seed} to replay the schedule)", flush=True)
    res = Results()
    fleet = Fleet(args, res)
    total: collections.Counter = collections.Counter()
    work = Path(args.work)
    passes = set(args.passes.split(","))
    if "file" in passes:
        counts = fleet.run_pass("file", str(work / "file" / "keychain.age"), member_restart=False)
        total.update(counts)
    if not args.etcd and args.require_etcd and "etcd" in passes:
        res.check("etcd: the pass ran", False,
                  "KS_TEST_ETCD_ENDPOINTS is not set and KEYSTRATA_REQUIRE_PEERS=1 "
                  "(start the cluster: eval \"$(bash scripts/peers.sh start)\")")
    if args.etcd and "etcd" in passes:
        prefix = args.etcd_prefix if args.etcd_prefix.startswith("/") else "/" + args.etcd_prefix
        key = f"{prefix.rstrip('/')}/fleet-{args.seed}-{os.getpid()}"
        counts = fleet.run_pass("etcd", f"etcd://{args.etcd}{key}", member_restart=True)
        total.update(counts)
        # The keychain's history (one revision per write, thousands per run)
        # stays in etcd until it compacts; the key itself goes now.
        subprocess.run(["etcdctl", f"--endpoints={args.etcd}", "--command-timeout=10s", "del", key],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                       env=dict(os.environ, ETCDCTL_API="3"))
    print("fleet totals: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in total.items()), flush=True)
    print(f"fleet: {res.passed} passed, {res.failed} failed", flush=True)
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
