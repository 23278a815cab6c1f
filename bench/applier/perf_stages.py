#!/usr/bin/env python3
"""pgbaton's CPU per stage, from a `perf record --call-graph dwarf` profile of `pgbaton run`.

Usage: perf script -F comm,tid,period,ip,sym,dso -i perf.data | bench/applier/perf_stages.py [TOTAL_CPU_S]

Each sample is charged to one stage: the leaf-most frame that belongs to pgbaton (or to libpq)
names it, read with the sample's thread (the decoder's libpq is receive, an apply session's is
libpq). Samples of RocksDB's own threads are its background work (memtable flushes,
compactions). With TOTAL_CPU_S (the cpu_s that `run` logged) the shares are also printed in
CPU-seconds. Stages:
  receive      libpq's CopyData reads and the socket (decoder thread)
  parse        pgoutput bytes -> messages (decoder/pgoutput_parser)
  assemble     messages -> chunks and commits (decoder/assembler) and the stream loop
  encode       records -> bytes (queue/codec Encode*)
  append       the durable RocksDB write: WAL, memtable, fsync (queue/rocksdb_queue_write)
  rocksdb-bg   RocksDB's background threads: flushes, compactions
  read back    the queue read: iterators, commit records (queue/rocksdb_queue_read)
  decode       bytes -> records (queue/codec Decode*)
  memory tail  transactions handed over in memory (queue/memory_tail)
  coordinate   the applier's coordinator: resolve, write sets, planner, channels
  sql build    apply sessions: statements, array literals, merging (applier/apply_session*,
               sql_builder, row_key)
  libpq        apply sessions' and the control connection's libpq and socket
  other        anything else (thread start, metrics, logging, unattributed)
"""
import collections
import re
import sys

STAGES = [
    # (stage, regex on the symbol), tried on each frame from the leaf up; first hit wins.
    ("parse", re.compile(r"pgbaton::decoder::(PgOutputParser|\(anonymous namespace\)::(ReadTuple|ReadTaggedTuple|Reader|Parse))")),
    ("assemble", re.compile(r"pgbaton::decoder::(Assembler|\(anonymous namespace\)::Session)")),
    ("receive", re.compile(r"pgbaton::decoder::(ReplicationConnection|PgSource|ParseXLogData|ParseKeepalive)")),
    ("encode", re.compile(r"pgbaton::queue::(Encode|\(anonymous namespace\)::(Seal|Put|Checksum))")),
    ("decode", re.compile(r"pgbaton::queue::(Decode|PeekEnvelope|\(anonymous namespace\)::(Get|Open|Reader|UnZigZag))")),
    ("append", re.compile(r"pgbaton::queue::RocksDbQueue::(Append|Write|DropOpen)")),
    ("read back", re.compile(r"pgbaton::queue::(RocksDbQueue::(CommitAt|GetRaw|WaitForMore|CatchUp|LastCommit)|\(anonymous namespace\)::Rocks)")),
    ("memory tail", re.compile(r"pgbaton::queue::\(anonymous namespace\)::(Tail|Held)")),
    # applier/ frames: an apply session's thread builds SQL, the coordinator's resolves.
    ("applier", re.compile(r"pgbaton::applier::")),
    ("libpq", re.compile(r"^(PQ|pq|libpq)")),
]
LIBPQ_DSO = re.compile(r"libpq\.so")


def classify(comm, frames):
    if comm.startswith("rocksdb"):
        return "rocksdb-bg"
    for sym, dso in frames:
        if LIBPQ_DSO.search(dso) or sym.startswith("PQ") or sym.startswith("pq"):
            return "receive" if comm == "pgb-decode" else "libpq"
        for stage, rx in STAGES:
            if rx.search(sym):
                if stage == "applier":
                    return "sql build" if comm.startswith("pgb-apply") else "coordinate"
                return stage
    # Kernel and libc only (a syscall whose caller the unwinder lost): by thread.
    if comm == "pgb-decode":
        return "receive"
    if comm.startswith("pgb-apply"):
        return "libpq"
    return "other"


def samples(stream):
    comm, period, frames = None, 0, []
    header = re.compile(r"^(\S.*?)\s+(\d+)\s+(\d+)\s*$")
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, period, frames
            comm, period, frames = None, 0, []
            continue
        if not line.startswith((" ", "\t")):
            m = header.match(line)
            if m:
                comm, period = m.group(1).strip(), int(m.group(3))
            else:
                parts = line.split()
                comm, period = parts[0], int(parts[-1]) if parts[-1].isdigit() else 1
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((sym, m.group(2)))
    if comm is not None:
        yield comm, period, frames


def main():
    total_cpu = float(sys.argv[1]) if len(sys.argv) > 1 else None
    by_stage = collections.Counter()
    by_thread = collections.Counter()
    for comm, period, frames in samples(sys.stdin):
        by_stage[classify(comm, frames)] += period
        by_thread[re.sub(r"\d+$", "N", comm)] += period
    total = sum(by_stage.values()) or 1
    print("%-12s %7s %s" % ("stage", "share", "CPU-s" if total_cpu else ""))
    order = ["receive", "parse", "assemble", "encode", "append", "rocksdb-bg", "read back",
             "decode", "memory tail", "coordinate", "sql build", "libpq", "other"]
    for stage in order:
        if by_stage[stage] == 0:
            continue
        share = by_stage[stage] / total
        cpu = " %.2f" % (share * total_cpu) if total_cpu else ""
        print("%-12s %6.1f%%%s" % (stage, 100 * share, cpu))
    print("by thread: " + ", ".join("%s %.1f%%" % (t, 100 * p / total) for t, p in by_thread.most_common()))


if __name__ == "__main__":
    main()
