"""A batch's record in OUT_DIR: journals of finished items, plans of what each run set out to do.

- A journal is append-only JSON lines, one object per finished item: `{"item", "status": "done" | "failed",
  "out", "outputs", "error", "seconds", "time", "settings", ...}`. Within one journal the last line for an
  item wins; a last line cut by a kill is ignored.
- One writer per journal, so no locks are needed on shared network storage: a run on the whole batch writes
  `stillflow_journal.jsonl`, shard K of N writes `stillflow_journal.shard-K-of-N.jsonl`. Every run reads all
  of them (`read_all`): an item done by any shard, or by an earlier split into other shards, is done. Across
  journals the newest record wins (a tie goes to "done").
- A plan, `stillflow_plan[.shard-K-of-N].json`, lists the items a run was given, written atomically when it
  starts, so that `stillflow batch --status OUT` knows what is still pending without the input.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from ...core import staging
from ...core.errors import InputError

log = logging.getLogger("stillflow")

JOURNAL = "stillflow_journal.jsonl"
PLAN = "stillflow_plan.json"


def journal_name(tag: str = "") -> str:
    return f"stillflow_journal.{tag}.jsonl" if tag else JOURNAL


def plan_name(tag: str = "") -> str:
    return f"stillflow_plan.{tag}.json" if tag else PLAN


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def open_no_link(path: Path, flags: int):
    """os.open that refuses a symbolic link at ``path`` (a planted link must not make a batch write
    elsewhere): one line and exit 2."""
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link: Stillflow writes its batch files only inside OUT_DIR; "
                         "remove the link")
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError:
        if path.is_symlink():
            raise InputError(f"{path} is a symbolic link: remove it") from None
        raise


class Journal:
    """Append-only JSON-lines record of finished items; tolerant of a last line cut by a kill."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict[str, dict]:
        """The last record of each item."""
        last: dict[str, dict] = {}
        if not self.path.exists() and not self.path.is_symlink():
            return last
        with os.fdopen(open_no_link(self.path, os.O_RDONLY), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    log.debug("%s line %d is incomplete (killed while writing?): ignored", self.path.name, n)
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("item"), str):
                    last[rec["item"]] = rec
        return last

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True)
        needs_newline = False
        fd = open_no_link(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        size = os.fstat(fd).st_size
        if size > 0:
            os.lseek(fd, size - 1, os.SEEK_SET)  # writes still go to the end (O_APPEND)
            needs_newline = os.read(fd, 1) != b"\n"
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(("\n" if needs_newline else "") + line + "\n")
            f.flush()
            os.fsync(f.fileno())


def journals(out_dir: Path) -> list[Path]:
    return sorted(p for p in Path(out_dir).glob("stillflow_journal*.jsonl"))


def read_all(out_dir: Path) -> dict[str, dict]:
    """Each item's newest record over every journal in OUT_DIR (a tie in time goes to "done")."""
    best: dict[str, dict] = {}
    for path in journals(out_dir):
        for name, rec in Journal(path).read().items():
            old = best.get(name)
            rank = (str(rec.get("time", "")), rec.get("status") == "done")
            if old is None or rank > (str(old.get("time", "")), old.get("status") == "done"):
                best[name] = rec
    return best


def write_plan(out_dir: Path, tag: str, items, shard: str | None) -> None:
    data = {"stillflow_plan": 1, "shard": shard, "time": now(),
            "items": [{"item": it.name, "out": it.out_name} for it in items]}
    path = Path(out_dir) / plan_name(tag)
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link: remove it")
    with staging.atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def planned(out_dir: Path) -> dict[str, str]:
    """item -> out folder, over every plan in OUT_DIR."""
    items: dict[str, str] = {}
    for path in sorted(Path(out_dir).glob("stillflow_plan*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for entry in data.get("items", []):
                items[str(entry["item"])] = str(entry.get("out", ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s is unreadable: ignored", path.name)
    return items


def status(out_dir: Path, names: list[str] | None = None) -> dict:
    """done / failed / pending over the journals, for ``names`` (default: every planned item)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"output folder not found: {out_dir}")
    records = read_all(out_dir)
    if names is None:
        names = sorted(set(planned(out_dir)) | set(records))
    done = [n for n in names if records.get(n, {}).get("status") == "done"]
    failed = {n: records[n].get("error", "failed") for n in names if records.get(n, {}).get("status") == "failed"}
    pending = [n for n in names if n not in records]
    return {"out_dir": str(out_dir), "items": len(names), "done": len(done), "failed": len(failed),
            "pending": len(pending), "failed_items": failed, "pending_items": pending,
            "journals": [p.name for p in journals(out_dir)]}
