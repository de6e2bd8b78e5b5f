"""The integrity machinery of a run directory: one writer, atomic files, sealed checkpoints, a pinned config.

Nothing here trains or reads tensors; :mod:`fl.experiment` builds runs on top of it.

* :class:`RunLock`: an exclusive ``fcntl.flock`` on ``<run>/.sabre.lock``, held for a run's life.
  The kernel drops it when the process ends, however it ends, so a killed run never leaves a
  stale lock; the file holds the holder's pid for the error message of the next writer.
* :func:`write_atomic`: temporary file, ``fsync``, rename, ``fsync`` of the directory.
  :func:`clean_stale_tmp` removes what a killed write left behind (only under the lock).
* :func:`seal` / :func:`unseal`: a checkpoint file is ``MAGIC || length (u64 LE) || payload ||
  SHA-256(domain || MAGIC || length || payload)``; :func:`unseal` refuses anything else with a
  :class:`BadCheckpoint` that says what is wrong (empty, foreign, truncated, extended, changed).
* the pin (``checkpoints/config.pin``): the effective config of the run as it started, with its
  SHA-256; :func:`config_digest` (over the keys that define what is computed, that is all but
  :data:`RESUMABLE_KEYS`) goes into every checkpoint, and :func:`config_differences` names the
  keys in which two configs differ.

The digests guard against accidents (a flipped bit, a half-copied file, a checkpoint of another
run, an edited file), not against someone who can write the directory and recompute them.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import struct
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from fl import faults
from rangeproof.blame import SabreError
from fl.config import ConfigError, ExperimentConfig, config_to_table, config_to_toml, parse_config, tomllib

__all__ = [
    "RunDirectory",
    "RunDirError",
    "BadCheckpoint",
    "RunLock",
    "RESUMABLE_KEYS",
    "write_atomic",
    "clean_stale_tmp",
    "seal",
    "unseal",
    "config_digest",
    "config_differences",
    "write_pin",
    "read_pin",
    "os_error_text",
    "read_rereleased",
    "released_rounds",
    "write_rereleased",
    "read_metrics",
]

#: keys that may change when a run is resumed (``--set``): they do not change what is computed
RESUMABLE_KEYS = ("run.rounds", "run.device", "run.checkpoint_every")

LOCK_NAME = ".sabre.lock"
PIN_NAME = "config.pin"
_CHECKPOINT_RE = re.compile(r"^round_(\d{6,})\.pt$")
_MAGIC = b"SABRECK2"
_DOMAIN = b"sabre/v1/checkpoint\x00"
_LENGTH = struct.Struct("<Q")
_DIGEST_BYTES = 32


class RunDirError(ConfigError):
    """The run directory cannot be used as asked (locked, unwritable, damaged, changed).

    A :class:`~fl.config.ConfigError`, so the command line reports it as one line with exit 2.
    """


class BadCheckpoint(SabreError):
    """A checkpoint file fails verification; the message says why (without the file name)."""


def os_error_text(error: OSError) -> str:
    """``error`` as ``file: reason`` on one line."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    other = f" -> {error.filename2}" if error.filename2 else ""
    return f"{error.filename}{other}: {reason}"


# ---------------------------------------------------------------------------- the directory
@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The files of one run (see :mod:`fl.experiment`)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def rounds(self) -> Path:
        return self.root / "rounds.csv"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def rereleased(self) -> Path:
        """The ledger of noised rounds a killed run released after its last checkpoint."""
        return self.root / "rereleased.csv"

    @property
    def plot(self) -> Path:
        return self.root / "plot.png"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def pin(self) -> Path:
        return self.checkpoints / PIN_NAME

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_NAME

    def checkpoint(self, next_round: int) -> Path:
        """The checkpoint taken after ``next_round`` rounds."""
        return self.checkpoints / f"round_{next_round:06d}.pt"

    def checkpoint_files(self) -> list[tuple[int, Path]]:
        """``(rounds in the file name, path)`` of every checkpoint, newest first."""
        if not self.checkpoints.is_dir():
            return []
        found = []
        for path in self.checkpoints.iterdir():
            match = _CHECKPOINT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint with the most rounds (by its name, unverified), or ``None``."""
        found = self.checkpoint_files()
        return found[0][1] if found else None

    def is_unused(self) -> bool:
        """Whether nothing of a run is here yet: at most the lock file, temporary files of killed
        writes and an empty checkpoints/ (a run killed while it started)."""
        for entry in self.root.iterdir():
            if entry.name == LOCK_NAME and entry.is_file() or _is_tmp(entry):
                continue
            if entry.name == "checkpoints" and entry.is_dir() and not entry.is_symlink() \
                    and all(_is_tmp(p) for p in entry.iterdir()):
                continue
            return False
        return True

    @staticmethod
    def check_free(out: str | Path) -> Path:
        """``out`` as a path, if a new run may be written there: absent, an empty directory, or
        one a run was about to start in (only the lock file and an empty checkpoints/).

        Raises:
          RunDirError: ``out`` is a file, a dangling symbolic link, or a directory with content.
        """
        root = Path(out)
        try:
            if root.is_symlink() and not root.exists():
                raise RunDirError(f"--out {root}: a symbolic link to {os.readlink(root)}, which does not exist")
            if root.exists():
                if not root.is_dir():
                    raise RunDirError(f"--out {root}: exists and is not a directory")
                if not RunDirectory(root).is_unused():
                    raise RunDirError(f"--out {root}: exists and is not an empty directory "
                                      f"(to continue the run there: sabre run --resume {root})")
            else:
                for parent in root.absolute().parents:
                    if parent.exists():
                        if not parent.is_dir():
                            raise RunDirError(f"--out {root}: {parent} is not a directory")
                        break
        except OSError as e:
            raise RunDirError(f"--out {root}: {os_error_text(e)}") from None
        return root

    @classmethod
    def create(cls, name: str, out: str | Path | None = None, base: str | Path = "runs") -> "RunDirectory":
        """Make a run directory: ``out`` if given (see :meth:`check_free`), else a new
        ``base/<name>-<UTC timestamp>`` (with a numeric suffix if that exists).

        Raises:
          RunDirError: ``out`` is not free, or the directory cannot be made.
        """
        try:
            if out is not None:
                root = cls.check_free(out)
                root.mkdir(parents=True, exist_ok=True)
            else:
                stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
                Path(base).mkdir(parents=True, exist_ok=True)
                root, n = Path(base) / f"{name}-{stamp}", 2
                while True:  # mkdir without exist_ok: two runs started in the same second get two names
                    try:
                        root.mkdir()
                        break
                    except FileExistsError:
                        root, n = Path(base) / f"{name}-{stamp}-{n}", n + 1
            (root / "checkpoints").mkdir(exist_ok=True)
        except OSError as e:
            where = out if out is not None else base
            raise RunDirError(f"cannot create the run directory under {where}: {os_error_text(e)}") from None
        return cls(root)


# ---------------------------------------------------------------------------- one writer
class RunLock:
    """An exclusive lock on a run directory, held until :meth:`release` or the process ends.

    Use :meth:`acquire`; a second process (or a second lock in the same process) gets a
    :class:`RunDirError` naming the holder's pid.
    """

    def __init__(self, fd: int, path: Path):
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, root: str | Path) -> "RunLock":
        """Lock the run directory ``root`` (which must exist) without waiting.

        Raises:
          RunDirError: another process holds it, or the lock file cannot be made.
        """
        path = Path(root) / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise RunDirError(f"{root}: cannot lock the run directory ({os_error_text(e)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(f"{root}: in use by another sabre process ({holder}); wait for it to end "
                                  f"or stop it, then resume") from None
            raise RunDirError(f"{root}: cannot lock the run directory ({os_error_text(e)})") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
        except OSError:
            pass  # the lock holds without the note; the next writer's message just lacks the pid
        return cls(fd, path)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- files
def write_atomic(path: Path, data: bytes, fault: str | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    ``fault`` names the file for :mod:`fl.faults` (``<fault>.partial``, ``.before_rename``,
    ``.after_rename``).

    Raises:
      OSError: the file cannot be written (the temporary file is removed).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual permissions
        with os.fdopen(fd, "wb") as f:
            if fault:
                half = len(data) // 2
                f.write(data[:half])
                f.flush()
                faults.point(f"{fault}.partial")
                f.write(data[half:])
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if fault:
            faults.point(f"{fault}.before_rename")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    if fault:
        faults.point(f"{fault}.after_rename")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def _is_tmp(path: Path) -> bool:
    """A temporary file of :func:`write_atomic` (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file() and not path.is_symlink()


def clean_stale_tmp(directory: RunDirectory) -> list[Path]:
    """Remove the temporary files killed writes left in the run directory; call under the lock.

    Returns:
      The files removed.
    """
    removed = []
    for folder in (directory.root, directory.checkpoints):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if _is_tmp(path):
                path.unlink()
                removed.append(path)
    return removed


# ---------------------------------------------------------------------------- sealed checkpoints
def _digest(length: bytes, payload: bytes) -> bytes:
    h = hashlib.sha256(_DOMAIN)
    h.update(_MAGIC)
    h.update(length)
    h.update(payload)
    return h.digest()


def seal(payload: bytes) -> bytes:
    """``payload`` in a checkpoint file's frame (magic, length, payload, SHA-256)."""
    length = _LENGTH.pack(len(payload))
    return _MAGIC + length + payload + _digest(length, payload)


def unseal(data: bytes) -> bytes:
    """The payload of a sealed checkpoint file, if its frame and digest are intact.

    Raises:
      BadCheckpoint: empty, not a sealed checkpoint, truncated, extended, or changed.
    """
    if not data:
        raise BadCheckpoint("empty file")
    if not data.startswith(_MAGIC):
        if data.startswith(b"PK\x03\x04"):
            raise BadCheckpoint("an unsealed checkpoint (written before sealed checkpoints; cannot be verified)")
        raise BadCheckpoint("not a sabre checkpoint (no header)")
    header = len(_MAGIC) + _LENGTH.size
    if len(data) < header + _DIGEST_BYTES:
        raise BadCheckpoint(f"truncated ({len(data)} bytes)")
    (length,) = _LENGTH.unpack_from(data, len(_MAGIC))
    expected = header + length + _DIGEST_BYTES
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "extended"
        raise BadCheckpoint(f"{what} ({len(data)} bytes, its header says {expected})")
    payload = data[header:header + length]
    if data[header + length:] != _digest(data[len(_MAGIC):header], payload):
        raise BadCheckpoint("digest mismatch: its contents changed after it was written")
    return payload


# ---------------------------------------------------------------------------- the pinned config
def _flat(cfg: ExperimentConfig) -> dict[str, Any]:
    """``section.key -> value`` of ``cfg`` as written to and read back from TOML (so a config
    and its file give the same digest)."""
    cfg = parse_config(tomllib.loads(config_to_toml(cfg)))
    return {f"{section}.{key}": value
            for section, values in config_to_table(cfg).items() for key, value in values.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def config_digest(cfg: ExperimentConfig) -> str:
    """SHA-256 (hex) of what ``cfg`` computes: every key but :data:`RESUMABLE_KEYS`."""
    flat = {k: v for k, v in _flat(cfg).items() if k not in RESUMABLE_KEYS}
    return hashlib.sha256(b"sabre/v1/config\x00" + _canonical(flat).encode()).hexdigest()


def config_differences(pinned: ExperimentConfig, current: ExperimentConfig) -> list[str]:
    """The keys (outside :data:`RESUMABLE_KEYS`) whose values differ, as ``key (a -> b)``, sorted."""
    a, b = _flat(pinned), _flat(current)
    out = []
    for key in sorted(set(a) | set(b)):
        if key in RESUMABLE_KEYS:
            continue
        if _canonical(a.get(key)) != _canonical(b.get(key)):
            old = _canonical(a[key]) if key in a else "unset"
            new = _canonical(b[key]) if key in b else "unset"
            out.append(f"{key} ({old} -> {new})")
    return out


_PIN_HEAD = "# sabre: the configuration this run was started with. Do not edit: resume checks config.toml against it.\n"


def write_pin(directory: RunDirectory, cfg: ExperimentConfig) -> None:
    """Pin ``cfg`` as the run's config (``checkpoints/config.pin``)."""
    text = config_to_toml(cfg)
    digest = hashlib.sha256(text.encode()).hexdigest()
    write_atomic(directory.pin, f"{_PIN_HEAD}# sha256 {digest}\n{text}".encode(), fault="pin")


def read_pin(directory: RunDirectory) -> ExperimentConfig | None:
    """The pinned config, or ``None`` if the run has none (it was killed before writing it).

    Raises:
      RunDirError: the pin exists but is damaged or does not parse.
    """
    path = directory.pin
    if not path.exists() and not path.is_symlink():
        return None
    try:
        text = path.read_bytes().decode()
        head, digest_line, body = text.split("\n", 2)
        if not digest_line.startswith("# sha256 ") or \
                hashlib.sha256(body.encode()).hexdigest() != digest_line[len("# sha256 "):]:
            raise ValueError("digest mismatch")
        return parse_config(tomllib.loads(body), source=directory.config)
    except OSError as e:
        raise RunDirError(f"{path}: cannot read the pinned config ({os_error_text(e)})") from None
    except (ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RunDirError(f"{path}: the pinned config is damaged ({e}); see 'When a checkpoint is bad' "
                          f"in docs/simulation.md") from None


# ---------------------------------------------------------------------------- re-released rounds
_LEDGER_HEADER = "round,dp_noise_multiplier"


def _multiplier(text: str) -> float | None:
    """A row's ``dp_noise_multiplier`` cell: a finite number >= 0, or ``None`` (no noised release)."""
    if text is None or text.strip() == "":
        return None
    z = float(text)
    if z != z:  # NaN: the round released nothing noised
        return None
    if not (0 <= z < float("inf")):
        raise ValueError(f"noise multiplier {text!r}")
    return z


def read_rereleased(directory: RunDirectory) -> list[tuple[int, float]]:
    """The ledger ``rereleased.csv``: ``(round, multiplier)`` of every noised release a killed
    run made after its last checkpoint and a resume recomputed ([] when there is none).

    Raises:
      RunDirError: the ledger cannot be read or is malformed (the accountant cannot go on
        without it: privacy already spent would be forgotten).
    """
    path = directory.rereleased
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(f"--resume {directory.root}: {path.name} cannot be read "
                          f"({os_error_text(e) if isinstance(e, OSError) else e}); it records privacy "
                          "already spent, so the run cannot go on without it") from None
    lines = text.splitlines()
    if not lines or lines[0] != _LEDGER_HEADER:
        raise RunDirError(f"--resume {directory.root}: {path.name} is malformed (expected the header "
                          f"{_LEDGER_HEADER!r}); it records privacy already spent, so the run cannot go on without it")
    ledger = []
    for n, row in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
        try:
            if len(row) != 2:
                raise ValueError("expected 2 cells")
            index, z = int(row[0]), _multiplier(row[1])
            if index < 0 or z is None:
                raise ValueError("expected a round >= 0 and a multiplier")
        except ValueError as e:
            raise RunDirError(f"--resume {directory.root}: {path.name} line {n} is malformed ({e}); it records "
                              "privacy already spent, so the run cannot go on without it") from None
        ledger.append((index, z))
    return ledger


def _noised_rows(directory: RunDirectory, path: Path) -> tuple[set[int], dict[int, float]] | None:
    """The rounds of a run table and the multiplier of each noised one (``None``: no such file).

    Raises:
      RunDirError: the file cannot be read or has a malformed row.
    """
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return None
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise RunDirError(f"--resume {directory.root}: {path.name} cannot be read ({e}), so the noised rounds "
                          "the run released cannot be counted; the run cannot go on") from None
    rounds: set[int] = set()
    noised: dict[int, float] = {}
    for row in rows:
        try:
            index = int(row.get("round") or "")
            z = _multiplier(row.get("dp_noise_multiplier") or "")
            if index < 0:
                raise ValueError("negative round")
        except ValueError:
            raise RunDirError(f"--resume {directory.root}: {path.name} has a malformed row "
                              f"(round {row.get('round')!r}), so the noised rounds the run released cannot be "
                              "counted; the run cannot go on") from None
        rounds.add(index)
        if z is not None:
            noised[index] = z
    return rounds, noised


def released_rounds(directory: RunDirectory, *, checkpoint_round: int) -> dict[int, float]:
    """Every noised round the run has released, ``round -> multiplier``: the noised rows of
    rounds.csv and of metrics.csv together (metrics.csv holds the evaluated rounds' rows, the same
    release).

    rounds.csv is written before a round's metrics.csv row and before any checkpoint after it, so
    it must hold every round below ``checkpoint_round`` (the most rounds any checkpoint's name
    gives, 0 if there is none) and every round metrics.csv records as released. A rounds.csv that
    is missing, or that ends before either, was lost or restored from an older copy: the releases
    after the checkpoint it no longer shows would be forgotten (or, with seeded noise, recomputed),
    so the resume is refused.

    Raises:
      RunDirError: a table cannot be read or is malformed; rounds.csv is missing or cut short
        (as above); or the two tables give one round different multipliers.
    """
    rounds_table = _noised_rows(directory, directory.rounds)
    metrics_table = _noised_rows(directory, directory.metrics)
    in_metrics = metrics_table[1] if metrics_table is not None else {}
    if rounds_table is None:
        if checkpoint_round > 0 or in_metrics:
            evidence = (f"a checkpoint after {checkpoint_round} round(s)" if checkpoint_round > 0 else
                        f"metrics.csv records noised round(s) {_round_list(in_metrics)}")
            raise RunDirError(f"--resume {directory.root}: {directory.rounds.name} is missing but {evidence}; "
                              "the noised rounds released after the last checkpoint cannot be counted from it, so "
                              "privacy already spent could be forgotten (or seeded noise recomputed). Restore the "
                              "run's rounds.csv, or start a new run")
        return {}
    on_disk, released = rounds_table
    last = max(on_disk, default=-1)
    missing = sorted(r for r in in_metrics if r not in released)
    if last + 1 < checkpoint_round or missing:
        evidence = (f"metrics.csv records noised round(s) {_round_list(missing)} that it lacks" if missing else
                    f"a checkpoint names {checkpoint_round} rounds")
        raise RunDirError(f"--resume {directory.root}: {directory.rounds.name} ends at round {last} but {evidence}; "
                          "it was cut short or restored from an older copy, so noised rounds released after the "
                          "last checkpoint could be forgotten (or seeded noise recomputed). Restore the run's "
                          "rounds.csv, or start a new run")
    differ = sorted(r for r, z in in_metrics.items() if released[r] != z)
    if differ:
        raise RunDirError(f"--resume {directory.root}: rounds.csv and metrics.csv record different noise "
                          f"multipliers for round(s) {_round_list(differ)}; the run's records disagree about what "
                          "was released, so the run cannot go on")
    return dict(sorted(released.items()))


def _round_list(rounds: Iterable[int]) -> str:
    shown = sorted(rounds)
    return ", ".join(str(r) for r in shown[:10]) + (f" ... ({len(shown)} in all)" if len(shown) > 10 else "")


def write_rereleased(directory: RunDirectory, ledger: list[tuple[int, float]]) -> None:
    """Write the ledger (atomically)."""
    body = "".join(f"{int(r)},{float(z)!r}\n" for r, z in ledger)
    write_atomic(directory.rereleased, (_LEDGER_HEADER + "\n" + body).encode())


def csv_cell(value: Any) -> str:
    """One CSV cell: ``repr`` of a float (it round-trips exactly, so two runs compare bit for bit
    through the file), ``str`` of anything else."""
    return repr(value) if isinstance(value, float) else str(value)


def csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """``rows`` as CSV with the header ``columns`` (missing keys are empty cells)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue().encode()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` (or ``rounds.csv``) as floats (empty cells left out).

    Raises:
      FileNotFoundError: the file does not exist.
    """
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
