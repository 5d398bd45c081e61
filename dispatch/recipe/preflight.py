"""Pre-flight checks the stage driver runs before any training job starts, and the record of the
options each training dir was trained with.

Every problem is one line that names the option to change; :func:`preflight_problems` returns
them all so that a user fixes everything in one go:

* ``--ngpu`` asks for more GPUs than torch sees (skipped for a slurm ``train_cmd``: the GPUs are on
  the compute nodes, not where the driver runs);
* a training or validation set has no utterance longer than the config's ``chunk_length`` (ESPnet's
  chunk iterator skips every utterance that is not strictly longer than the shortest chunk length,
  and a validation set left empty ends training with ``valid.loss is not found in stats``);
* ``--teacher_cache true`` with ``--speed_perturb_factors`` (the cache would hold the outputs for
  the unperturbed utterances).

:func:`check_train_dir` compares a training dir's recorded options (``train_options.json``) with
the ones asked for now, and refuses a change unless ``--force true``; ``--force true`` without
``--resume true`` clears the old checkpoints so that training starts from scratch.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from dispatch.utils.io import atomic_write_text

OPTIONS_FILE = "train_options.json"
#: ESPnet options that decide how the chunk iterator cuts the data, with ESPnet's defaults.
CHUNK_DEFAULTS = {"iterator_type": "sequence", "valid_iterator_type": None, "chunk_length": 500,
                  "chunk_shift_ratio": 0.5, "chunk_discard_short_samples": True, "batch_size": 20,
                  "valid_batch_size": None, "num_iters_per_epoch": None}
#: What --force true (without --resume true) removes from a training dir before it trains again.
TRAINING_OUTPUTS = ("*.pth", "images", "tensorboard", ".done", OPTIONS_FILE)


class PreflightError(ValueError):
    """A problem found before training; the message is one line naming the option to change."""


# ----------------------------------------------------------------------------- configs and data


def effective_options(config: str, args: Sequence[str] = ()) -> Dict[str, object]:
    """The chunk-related training options of ``config`` after command-line overrides ``args``
    (``--name value`` or ``--name=value``, the last one wins, as with ESPnet's parser)."""
    path = Path(config)
    if not path.is_file():
        raise PreflightError(f"config '{config}' does not exist; check --teacher_config / "
                             "--student_config in run.sh")
    with path.open(encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    options = {k: conf.get(k, v) for k, v in CHUNK_DEFAULTS.items()}
    words = list(args)
    for i, word in enumerate(words):
        if not word.startswith("--"):
            continue
        name, eq, value = word[2:].partition("=")
        if name not in options:
            continue
        if not eq:
            if i + 1 >= len(words):
                continue
            value = words[i + 1]
        options[name] = None if value.lower() in ("none", "null") else yaml.safe_load(value)
    return options


def chunk_lengths(value: object) -> List[int]:
    """ESPnet's ``chunk_length``: 32000, "16000,32000" or "16000-32000" -> the candidate lengths."""
    if isinstance(value, int):
        return [value]
    lengths: List[int] = []
    for part in str(value).split(","):
        low, dash, high = part.strip().partition("-")
        lengths += list(range(int(low), int(high) + 1)) if dash else [int(low)]
    return lengths


def utterance_lengths(data_dir: str, shape_file: Optional[str] = None) -> Dict[str, int]:
    """Samples per utterance: from an ESPnet shape file when it exists, else the wav headers."""
    if shape_file and Path(shape_file).is_file():
        lines = Path(shape_file).read_text(encoding="utf-8").split("\n")
        return {u: int(n.split(",")[0]) for u, n in (ln.split(maxsplit=1) for ln in lines if ln.strip())}
    import soundfile as sf

    from dispatch.data.scp import read_scp_dict

    return {u: sf.info(p).frames for u, p in read_scp_dict(Path(data_dir) / "wav.scp").items()}


def suggest_chunk(lengths: Sequence[int], fs: int) -> int:
    """A chunk length (samples, a multiple of a quarter second where possible) that 90% of the
    utterances are longer than."""
    ordered = sorted(lengths)
    p10 = ordered[len(ordered) // 10] - 1
    step = max(fs // 4, 1)
    return (p10 // step) * step if p10 >= step else max(p10, 1)


def unused_utterances(options: Dict[str, object], valid: bool, lengths: Dict[str, int]) -> int:
    """How many utterances ESPnet's chunk iterator skips under ``options`` (0 without it).

    An utterance is used only when it is longer than the shortest chunk length (ESPnet's
    ``ChunkIterFactory`` keeps the chunk lengths ``< L``).
    """
    iterator = (options["valid_iterator_type"] if valid else None) or options["iterator_type"]
    if iterator != "chunk" or not options["chunk_discard_short_samples"]:
        return 0
    shortest = min(chunk_lengths(options["chunk_length"]))
    return sum(1 for n in lengths.values() if n <= shortest)


def chunks_per_utterance(length: int, widths: Sequence[int], shift_ratio: float) -> float:
    """Mean number of chunks ESPnet cuts from one utterance of ``length`` samples (0: skipped):
    ``(L - W) // S + 1`` for a chunk length ``W < L`` and shift ``S = W * shift_ratio``."""
    usable = [w for w in widths if w < length]
    if not usable:
        return 0.0
    return sum((length - w) // max(int(w * shift_ratio), 1) + 1 for w in usable) / len(usable)


def too_few_chunks(options: Dict[str, object], valid: bool, lengths: Dict[str, int]
                   ) -> Optional[Tuple[int, int, str]]:
    """(chunks per epoch, batch size, option) when a set's chunks cannot fill one batch (ESPnet's
    chunk iterator drops an incomplete batch); None otherwise. Training reads
    ``num_iters_per_epoch`` utterances per epoch when it is set (ESPnet cycles through the set)."""
    if options["iterator_type"] != "chunk" or (valid and options["valid_iterator_type"] not in
                                               (None, "chunk")) or not lengths:
        return None
    batch = int((options["valid_batch_size"] if valid else None) or options["batch_size"])
    widths = chunk_lengths(options["chunk_length"])
    per_utt = [chunks_per_utterance(n, widths, float(options["chunk_shift_ratio"]))
               for n in lengths.values()]
    utts = len(per_utt) if valid or not options["num_iters_per_epoch"] else int(options["num_iters_per_epoch"])
    chunks = int(utts * sum(per_utt) / len(per_utt))
    if 0 < chunks < batch:
        return chunks, batch, "--valid_batch_size" if valid else "--batch_size"
    return None


def chunk_problems(jobs: Sequence[Tuple[str, str, Dict[str, object]]],
                   data: Sequence[Tuple[str, Dict[str, int]]], fs: int) -> Tuple[List[str], List[str]]:
    """(errors, notes) for the training jobs (role option, config, options) on the data sets
    (dir, lengths; training set first). A set with no usable utterance is an error, one line per
    job, or one line naming ``--train_args`` when every job has it; some unused, a note."""
    failing, notes, errors = [], [], []
    for role_option, config, options in jobs:
        empty = []
        for index, (set_dir, lengths) in enumerate(data):
            unused = unused_utterances(options, index > 0, lengths)
            where = f"chunk_length {options['chunk_length']} of {config}"
            few = too_few_chunks(options, index > 0, lengths)
            if lengths and unused == len(lengths):
                empty.append((set_dir, lengths))
            elif few:
                errors.append(f"{set_dir}: its {len(lengths)} utterances give {few[0]} chunks per "
                              f"epoch, fewer than the batch size {few[1]} of {config}, and ESPnet's "
                              f"chunk iterator makes no incomplete batch; pass {role_option} "
                              f"\"{few[2]} {few[0]}\" or add utterances")
            elif unused:
                notes.append(f"{set_dir}: {unused} of {len(lengths)} utterances are not longer than "
                             f"{where}; ESPnet's chunk iterator skips them")
        if empty:
            failing.append((role_option, config, options, empty))
    if not failing:
        return errors, notes
    every = [n for _, lengths in data for n in lengths.values()]
    fix = suggest_chunk(every, fs)
    groups = [failing] if len(failing) > 1 and len(failing) == len(jobs) else [[f] for f in failing]
    for group in groups:
        role_option = "--train_args" if len(group) > 1 else group[0][0]
        configs = " and ".join(f"{c} ({min(chunk_lengths(o['chunk_length'])) / fs:.1f} s)"
                               for _, c, o, _ in group)
        sets = group[0][3]
        longest = max(n for _, lengths in sets for n in lengths.values())
        errors.append(
            f"{' and '.join(d for d, _ in sets)}: no utterance is longer than the chunk_length of "
            f"{configs} (the longest is {longest / fs:.2f} s) and ESPnet's chunk iterator skips "
            f"shorter ones; pass {role_option} \"--chunk_length {fix}\" or use longer clips")
    return errors, notes


# ----------------------------------------------------------------------------- the whole check


def visible_gpus() -> int:
    """GPUs that torch can use here (CUDA_VISIBLE_DEVICES applies)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def ngpu_problem(ngpu: int, available: int, train_cmd: str = "") -> Optional[str]:
    """A one-line problem when ``--ngpu`` exceeds the GPUs present (not checked under slurm)."""
    if ngpu <= available or "slurm" in train_cmd:
        return None
    have = "no GPU" if available == 0 else f"only {available} GPU{'s' if available > 1 else ''}"
    return (f"--ngpu {ngpu} asks for {ngpu} GPU{'s' if ngpu > 1 else ''} per training job but this "
            f"machine has {have} (torch sees {available}); pass --ngpu {available} (0 trains on "
            "CPU) or set ngpu in run.sh")


def preflight_problems(ngpu: int, train_cmd: str, fs: int, data: Sequence[Tuple[str, Optional[str]]],
                       jobs: Sequence[Tuple[str, str, str]], teacher_cache: bool = False,
                       speed_perturb_factors: str = "", available: Optional[int] = None
                       ) -> Tuple[List[str], List[str]]:
    """(errors, notes) for a run that will train ``jobs``.

    data: (data dir, shape file or None) for the training set, then the validation set.
    jobs: (option that holds the job's own arguments, config path, its argument string).
    """
    errors: List[str] = []
    notes: List[str] = []
    problem = ngpu_problem(ngpu, visible_gpus() if available is None else available, train_cmd)
    if problem:
        errors.append(problem)
    if teacher_cache and speed_perturb_factors.strip():
        errors.append("--teacher_cache true cannot be used with --speed_perturb_factors "
                      f"'{speed_perturb_factors}': the cache would hold the teacher's outputs for "
                      "the unperturbed utterances; drop one of the two")
    sets = [(d, utterance_lengths(d, s) if Path(d, "wav.scp").is_file() else {}) for d, s in data]
    parsed = []
    for role_option, config, args in jobs:
        try:
            parsed.append((role_option, config, effective_options(config, shlex.split(args))))
        except PreflightError as exc:
            errors.append(str(exc))
    chunk_errors, notes = chunk_problems(parsed, sets, fs)
    return errors + chunk_errors, notes


# ----------------------------------------------------------------------------- training dirs


def train_fingerprint(config: str, options: str) -> Dict[str, str]:
    """What a training dir is trained from: its config (path and content hash) and its options."""
    digest = hashlib.sha256(Path(config).read_bytes()).hexdigest() if Path(config).is_file() else ""
    return {"config": str(config), "config_sha256": digest, "options": " ".join(options.split())}


def describe_change(old: Dict[str, str], new: Dict[str, str]) -> str:
    """What differs between two fingerprints, in a few words."""
    if old.get("options") != new["options"]:
        from difflib import SequenceMatcher

        a, b = old.get("options", "").split(), new["options"].split()
        changes = []
        for tag, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            # keep the option name with a changed value: '--max_epoch 1' -> '--max_epoch 2'
            if i1 > 0 and a[i1 - 1].startswith("--") and not (a[i1:i2] + b[j1:j2])[0].startswith("--"):
                i1, j1 = i1 - 1, j1 - 1
            changes.append(f"'{' '.join(a[i1:i2])}' -> '{' '.join(b[j1:j2])}'")
        return "options " + ", ".join(changes)[:300]
    if old.get("config") != new["config"]:
        return f"config was {old.get('config')}, now {new['config']}"
    return f"{new['config']} was edited since"


def reset_train_dir(directory: Path) -> List[str]:
    """Remove the checkpoints and markers of an earlier training; returns what was removed."""
    import shutil

    removed = []
    for pattern in TRAINING_OUTPUTS:
        for path in sorted(directory.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path.name)
    return removed


def check_train_dir(directory: str, config: str, options: str, force: bool, resume: bool
                    ) -> str:
    """Decide what a training job may do with ``directory``; returns a one-line note.

    Raises PreflightError when the dir holds a finished or resumable training (``.done`` or
    ``checkpoint.pth``) with other options and ``force`` is off; a training that failed before its
    first checkpoint takes the new options.
    With ``force`` the old training is cleared first unless ``resume``; the new options are recorded.
    """
    path = Path(directory)
    record = path / OPTIONS_FILE
    new = train_fingerprint(config, options)
    old = None
    if record.is_file():
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:
            old = None
    note = ""
    started = (path / ".done").is_file() or (path / "checkpoint.pth").is_file()
    if old is not None and old != new and started and not force:
        raise PreflightError(
            f"{directory} was trained with other options ({describe_change(old, new)}); pass "
            f"--tag NAME to train into a new experiment dir, or --force true to retrain "
            f"{directory} from scratch")
    if force and not resume and path.is_dir():
        removed = reset_train_dir(path)
        note = f"{directory}: --force true, starting from scratch" + (
            f" (removed {', '.join(removed[:6])}{', ...' if len(removed) > 6 else ''})" if removed else "")
    elif force and resume:
        note = f"{directory}: --force true --resume true, continuing from its last checkpoint"
    path.mkdir(parents=True, exist_ok=True)
    if old != new or force:
        atomic_write_text(record, json.dumps(new, indent=1) + "\n")
    return note
