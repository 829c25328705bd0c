"""What a batch works on: its items, from a folder of photos or a job list, and a shard's share of them.

- A folder: every photo directly inside it (by suffix, sorted), each into `OUT_DIR/<stem>/`.
- A job list, `.csv` (a header row) or `.jsonl` (one JSON object a line): one item a row, with the column
  `photo` (a path, relative to the list's folder) and optionally `name` (the output folder and journal key;
  default: the photo's stem) and per-item settings, which replace the command line's for that item only:
  `hints`, `mask` (paths), `motion` (auto | hints | model), `frames`, `fps`, `speed`, `feather_px`, `max_size`,
  `renderer`, `format`, `mp4_quality`. An empty CSV cell keeps the command line's value. A bad row stops the
  batch before any work: one line naming the row, exit code 2.
- `--shard K/N`: the items whose name hashes to K - 1 modulo N (SHA-1 of the name), so N processes on N
  machines split any list with no coordination, and an item stays in its shard when others are added.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import InputError
from ...core.job import Job

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".tga", ".exr"}
LIST_SUFFIXES = {".csv", ".jsonl"}
RESERVED = (".stillflow", "stillflow_journal", "stillflow_plan")  # the batch's own files and staging folders
# Per-item columns of a job list: where each goes in the job's dict, and its type (None: a path).
COLUMNS: dict[str, tuple[tuple[str, ...], type | None]] = {
    "hints": (("motion", "hints_path"), None),
    "mask": (("motion", "mask_path"), None),
    "motion": (("motion", "source"), str),
    "feather_px": (("motion", "feather_px"), float),
    "frames": (("loop", "frames"), int),
    "fps": (("loop", "fps"), float),
    "speed": (("loop", "speed"), float),
    "renderer": (("loop", "renderer"), str),
    "format": (("output", "fmt"), str),
    "mp4_quality": (("output", "mp4_quality"), str),
    "max_size": (("max_size",), int),
}


@dataclass
class Item:
    name: str  # the journal key: the photo's file name (folder) or the list's `name` / photo
    path: Path
    out_name: str  # folder name inside OUT_DIR
    job: dict  # this item's job (Job.to_dict form)
    redo: bool = False  # done earlier, but its inputs or settings changed: its own output is replaced

    @property
    def key(self) -> dict:
        """What decides the item's outputs: compared with the journal on resume."""
        return Job.from_dict(self.job).settings_key()

    def run_job(self) -> dict:
        """The job a worker runs: with overwrite where the item is redone (its own earlier output only)."""
        if not self.redo:
            return self.job
        return {**self.job, "output": {**self.job["output"], "overwrite": True}}


def _out_names(stems: list[str], suffixes: list[str]) -> list[str]:
    """Unique folder names: a stem that occurs twice gets its suffix; never one of the batch's own names."""
    count: dict[str, int] = {}
    for s in stems:
        count[s] = count.get(s, 0) + 1
    names = []
    for stem, suffix in zip(stems, suffixes, strict=True):
        name = stem if count[stem] == 1 else f"{stem}_{suffix.lstrip('.').lower()}"
        if name.startswith(RESERVED):
            name = f"{name}_item"
        names.append(name)
    return names


def list_items(in_dir: Path, job: Job) -> list[Item]:
    """Photos directly inside `in_dir` (by suffix, sorted), each with a unique output folder name."""
    files = sorted(
        p for p in in_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        and not p.name.lower().endswith((".mask.png", ".mask.jpg"))
    )
    base = job.to_dict()
    names = _out_names([p.stem for p in files], [p.suffix for p in files])
    return [Item(p.name, p, n, copy.deepcopy(base)) for p, n in zip(files, names, strict=True)]


def _rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) of a job list; one clear line for a file that is not one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the job list {path}: {getattr(err, 'strerror', None) or err}") from None
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "photo" not in [f.strip() for f in reader.fieldnames]:
            raise InputError(f"{path}: a job list's first row names its columns, and one of them is 'photo'")
        for row in reader:
            if None in row:
                raise InputError(f"{path} line {reader.line_num}: more cells than columns")
            cleaned = {k.strip(): v.strip() for k, v in row.items() if v is not None and v.strip() != ""}
            if cleaned:
                rows.append((reader.line_num, cleaned))
        return rows
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path} line {n}: not JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path} line {n}: each line is one JSON object")
        rows.append((n, row))
    return rows


def _value(where: str, column: str, kind: type | None, raw):
    if kind is None or kind is str:
        if not isinstance(raw, str):
            raise InputError(f"{where}: {column} must be text, got {raw!r}")
        return raw
    if isinstance(raw, str):
        try:
            return kind(raw) if kind is float else int(raw, 10)
        except ValueError:
            raise InputError(f"{where}: {column} must be {'a whole number' if kind is int else 'a number'}, "
                             f"got {raw!r}") from None
    return raw  # a JSON number: the job's validation checks its type and bounds


def read_job_list(path: Path, job: Job) -> list[Item]:
    """The items of a job list (.csv or .jsonl), each with the command line's job and its row's settings."""
    base = job.to_dict()
    folder = path.resolve().parent
    items: list[Item] = []
    seen: dict[str, int] = {}
    pending: list[tuple[str, Path, str | None, dict]] = []
    for line, row in _rows(path):
        where = f"{path.name} line {line}"
        unknown = set(row) - set(COLUMNS) - {"photo", "name"}
        if unknown:
            raise InputError(f"{where}: unknown column(s) {', '.join(sorted(unknown))} (known: photo, name, "
                             f"{', '.join(COLUMNS)})")
        photo = row.get("photo")
        if not isinstance(photo, str) or not photo:
            raise InputError(f"{where}: no photo")
        photo_path = (folder / photo) if not Path(photo).is_absolute() else Path(photo)
        if not photo_path.is_file():
            raise InputError(f"{where}: photo not found: {photo_path}")
        d = copy.deepcopy(base)
        for column, (dest, kind) in COLUMNS.items():
            if column not in row:
                continue
            value = _value(where, column, kind, row[column])
            if kind is None:
                value = str(folder / value) if not Path(value).is_absolute() else value
                if not Path(value).is_file():
                    raise InputError(f"{where}: {column} file not found: {value}")
                if column == "hints":
                    d["motion"]["sidecar_hints"] = False  # the row's hints file is the one to use
            target = d
            for part in dest[:-1]:
                target = target[part]
            target[dest[-1]] = value
        try:
            Job.from_dict(d).validate()
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
        name = row.get("name")
        if name is not None:
            if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", "..") \
                    or name.startswith(".") or name.startswith(RESERVED):
                raise InputError(f"{where}: name must be a plain folder name (not one of the batch's own), "
                                 f"got {name!r}")
        key = name or photo
        if key in seen:
            raise InputError(f"{where}: item {key!r} is already on line {seen[key]}")
        seen[key] = line
        pending.append((key, photo_path, name, d))
    auto = _out_names([p.stem for _, p, _, _ in pending], [p.suffix for _, p, _, _ in pending])
    taken = {n for _, _, n, _ in pending if n}
    for (key, photo_path, name, d), default in zip(pending, auto, strict=True):
        out_name = name or (default if default not in taken else f"{default}_{len(items)}")
        items.append(Item(key, photo_path, out_name, d))
    outs = [it.out_name for it in items]
    if len(set(outs)) != len(outs):
        dup = next(o for o in outs if outs.count(o) > 1)
        raise InputError(f"{path.name}: two items write to the folder {dup!r}: give them different names")
    return items


def load_items(source: Path, job: Job) -> list[Item]:
    """A folder's photos or a job list's rows."""
    if source.is_dir():
        return list_items(source, job)
    if source.is_file() and source.suffix.lower() in LIST_SUFFIXES:
        return read_job_list(source, job)
    if source.is_file():
        raise InputError(f"{source} is neither a folder of photos nor a job list (.csv or .jsonl)")
    raise InputError(f"input folder not found: {source}")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            k, n = (int(part, 10) for part in text.split("/"))
        except ValueError:
            raise InputError(f"--shard must be K/N (for example 2/8), got {text!r}") from None
        if not (n >= 1 and 1 <= k <= n):
            raise InputError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
        return cls(k, n)

    @property
    def tag(self) -> str:
        """In file names: shard-K-of-N."""
        return f"shard-{self.index}-of-{self.count}"

    @property
    def label(self) -> str:
        """In messages and records: K/N."""
        return f"{self.index}/{self.count}"

    def has(self, name: str) -> bool:
        digest = hashlib.sha1(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, items: list[Item]) -> list[Item]:
        return [it for it in items if self.has(it.name)]
