"""The Python API: train, open, sample from and score runs, with the engine and files the CLI uses.

::

    import textbench

    res = textbench.run("mle", "synthetic", profile="quick", seed=0, settings={"oracle": "seeded"}, results="/tmp/tb")
    res.metrics                      # pandas DataFrame: one row per evaluation (step, wall_s, every metric)
    res.final["nll_oracle"]          # summary.json's final values (res.summary: the whole summary)
    ids = textbench.generate(res, 100, temperature=0.8)   # synthetic: token ids [100, 20]; text suites: lines
    textbench.evaluate(ids, run=res)                       # nll_oracle and the NLL under the run's generator
    textbench.evaluate(["a cat sits ."], ["a cat sat on the mat ."], metrics="bleu-2,self-bleu-2")

Everything here is a thin layer over the engine: :func:`run` is ``engine.loop.Run`` + ``train`` (same run
directories, same resume / force rules, same files), :func:`load_run` reads a run directory through
``engine.rundir.RunDir``, :func:`generate` samples like ``textbench generate`` (same seed, same samples), and
:func:`evaluate` scores like ``textbench eval`` (``metrics.bleu`` and the suites' ``evaluate_samples``). The CLI
commands ``run``, ``generate`` and ``eval`` call these functions. Every user error is a
:class:`~textbench.errors.TextbenchError` with a one-line message.

Importing this module is cheap (torch, pandas and the engine are imported when a function needs them).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .errors import TextbenchError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from .suites.base import Suite

__all__ = ["RunResult", "Evaluation", "run", "load_run", "generate", "evaluate", "MAX_SAMPLES"]

MAX_SAMPLES = 10_000_000  # generate n: more is a typo, not a request

#: the metrics scored against references when none are named (as ``textbench eval --references``)
DEFAULT_BLEU_METRICS = ("bleu-2", "bleu-3", "bleu-4", "bleu-5")


class RunResult:
    """A run directory, opened: identity and settings (config.json), summary, metrics and generator.

    Attributes and properties:

    * ``path``: the run directory; ``config``: config.json (every resolved setting, the suite signature, ...)
    * ``algo``, ``suite``, ``profile``, ``seed``, ``settings``, ``signature`` (the suite signature)
    * ``summary``: summary.json (final / best of every metric, ``complete``), None while none was written;
      ``final``: its final metric values (``{}`` without a summary); ``complete``: a finished run
    * ``metrics``: metrics.csv as a pandas DataFrame (one row per evaluation; empty before the first)
    * ``generator``: the trained generator (from checkpoints/last.pt, else generator.pt), in eval mode;
      ``suite_object``: the suite rebuilt from the run's settings (its data, vocabulary and evaluation)

    Summary and metrics are read when first asked for; the generator is built once, on first use.
    """

    def __init__(self, path: str | os.PathLike, config: dict | None = None, summary: dict | None = None):
        from .engine.rundir import RunDir

        self.path = Path(path)
        self._rd = RunDir(self.path)
        self.config: dict = config if config is not None else self._rd.read_config()
        self._summary = summary
        self._metrics: pd.DataFrame | None = None
        self._loaded: dict[str | None, tuple[Suite, torch.nn.Module]] = {}

    def __repr__(self) -> str:
        state = "complete" if self.complete else "not complete"
        return f"RunResult({str(self.path)!r}: {self.algo} on {self.suite}, profile {self.profile}, seed {self.seed}, {state})"

    # -- identity ------------------------------------------------------------------------------------
    @property
    def algo(self) -> str:
        return self.config["algo"]

    @property
    def suite(self) -> str:
        return self.config["suite"]

    @property
    def profile(self) -> str:
        return self.config["profile"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def settings(self) -> dict[str, Any]:
        return self.config["settings"]

    @property
    def signature(self) -> dict[str, Any]:
        """The suite signature recorded in config.json (data files and their SHA-256, vocabulary, ...)."""
        return self.config.get("suite_signature") or {}

    # -- results -------------------------------------------------------------------------------------
    @property
    def summary(self) -> dict | None:
        if self._summary is None and self._rd.summary_path.is_file():
            self._summary = self._rd.read_summary()
        return self._summary

    @property
    def complete(self) -> bool:
        s = self.summary
        return isinstance(s, dict) and s.get("complete") is True

    @property
    def final(self) -> dict[str, float]:
        s = self.summary
        return dict(s.get("final") or {}) if isinstance(s, dict) else {}

    @property
    def metrics(self) -> pd.DataFrame:
        if self._metrics is None:
            import pandas as pd

            if self._rd.metrics_path.is_file():
                self._metrics = self._rd.read_metrics_frame()
            else:
                self._metrics = pd.DataFrame({"step": pd.Series([], dtype="int64")})
        return self._metrics

    # -- the model -----------------------------------------------------------------------------------
    def load(self, checkpoint: str | os.PathLike | None = None) -> tuple[Suite, torch.nn.Module]:
        """(suite, generator): the suite rebuilt from the run's settings and the generator with the weights of
        ``checkpoint`` (default: checkpoints/last.pt, else generator.pt), in eval mode; built once per checkpoint."""
        from .engine.loop import load_generator

        key = str(checkpoint) if checkpoint else None
        if key not in self._loaded:
            suite, generator, _cfg = load_generator(self.path, Path(checkpoint) if checkpoint else None)
            self._loaded[key] = (suite, generator)
        return self._loaded[key]

    @property
    def generator(self) -> torch.nn.Module:
        return self.load()[1]

    @property
    def suite_object(self) -> Suite:
        return self.load()[0]

    # -- shortcuts -----------------------------------------------------------------------------------
    def generate(self, n: int = 100, temperature: float = 1.0, seed: int = 0, checkpoint: str | os.PathLike | None = None):
        """:func:`generate` from this run."""
        return generate(self, n, temperature=temperature, seed=seed, checkpoint=checkpoint)

    def evaluate(self, samples, metrics: str | Sequence[str] | None = None) -> Evaluation:
        """:func:`evaluate` ``samples`` with this run's suite and generator."""
        return evaluate(samples, run=self, metrics=metrics)

    def format_samples(self, samples) -> list[str]:
        """One line per sample, as ``textbench generate`` writes them: token ids separated by spaces
        (synthetic) or words (text suites; lines from :func:`generate` are returned as they are)."""
        if isinstance(samples, (list, tuple)) and all(isinstance(s, str) for s in samples):
            return list(samples)
        return self.suite_object.format_samples(_as_ids(samples))


class Evaluation(dict):
    """Metric name -> value (a plain ``dict`` of floats), with ``signature``: what produced the numbers
    (suite signature, BLEU protocol, tokenizer, files) as ``textbench eval`` prints it."""

    def __init__(self, values: Mapping[str, float], signature: Mapping[str, Any] | None = None):
        super().__init__(values)
        self.signature: dict[str, Any] = dict(signature or {})


# ---------------------------------------------------------------------------------------------------------
# run / load_run
# ---------------------------------------------------------------------------------------------------------


def run(
    algo: str,
    suite: str,
    profile: str = "quick",
    seed: int = 0,
    settings: Mapping[str, Any] | Sequence[str] | None = None,
    results: str | os.PathLike | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    stop_at_step: int | None = None,
    threads: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    checkpoint_minutes: float = 5.0,
) -> RunResult:
    """Train ``algo`` on ``suite`` (as ``textbench run``) and return the run.

    * ``settings``: overrides, as ``--set`` (``{"steps": 100, "oracle": "seeded"}``, or ``["steps=100"]``);
      strings are parsed like ``--set`` values. Every setting is validated before anything is written
      (``textbench settings`` lists them).
    * ``results``: the results folder (default: ``$TEXTBENCH_RESULTS``, else the user data dir); the run goes to
      ``<results>/runs/<suite>/<algo>/<profile>-seed<N>[-set<hash>]``, or to ``run_dir`` if given.
    * A complete run there is returned as it is (not retrained; ``force=True`` replaces it); an unfinished one
      is an error unless ``resume=True`` (continue from its checkpoint) or ``force=True``.
    * ``stop_at_step``: stop (resumably) after this many steps; ``threads``: torch's intra-op threads
      (process-wide, as ``--threads``); ``progress``: a progress bar on stderr; ``log``: called with each
      progress line (``print`` shows what ``textbench run`` prints; default: silent).
    """
    from .engine.loop import Run, train

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TextbenchError(f"seed={seed!r}: expected an integer")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    say = log or (lambda _msg: None)
    r = Run(algo, suite, profile, seed, _overrides(settings), Path(run_dir) if run_dir else None,
            Path(results) if results is not None else None)
    say(f"run {r.run_dir}  ({algo} on {suite}, profile {profile}, seed {seed})")
    summary = train(r, resume=resume, force=force, progress=progress, stop_at_step=stop_at_step, log=say,
                    checkpoint_every_s=60.0 * checkpoint_minutes)
    return RunResult(r.run_dir, summary=summary)


def load_run(path: str | os.PathLike) -> RunResult:
    """Open a run directory (complete, or unfinished with a checkpoint): its config, summary, metrics, generator."""
    from .engine.rundir import RunDir

    rd = RunDir(path)
    state = rd.status()
    if state == "absent":
        raise TextbenchError(f"{rd.path}: no run there (no config.json)")
    if state == "foreign":
        raise TextbenchError(f"{rd.path} holds files but no config.json: not a textbench run directory")
    return RunResult(rd.path)


def _overrides(settings) -> dict[str, Any] | list[str]:
    if settings is None:
        return {}
    if isinstance(settings, Mapping):
        return dict(settings)
    if isinstance(settings, str) or not all(isinstance(s, str) for s in settings):
        raise TextbenchError("settings: expected a dict {key: value} or a list of 'key=value' strings")
    return list(settings)


def _as_run(run_or_path) -> RunResult:
    return run_or_path if isinstance(run_or_path, RunResult) else load_run(run_or_path)


# ---------------------------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------------------------


def generate(
    run: RunResult | str | os.PathLike,
    n: int = 100,
    temperature: float = 1.0,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
) -> list[str] | torch.Tensor:
    """``n`` samples of a run's generator, softmax(logits / ``temperature``), drawn from ``seed``.

    Returns the decoded lines for a text suite (words up to the first ``<eos>``, joined by spaces: what
    ``textbench generate`` prints) and a LongTensor of token ids ``[n, seq_len]`` for the synthetic suite.
    ``run``: a :class:`RunResult` or a run directory; ``checkpoint``: other weights (default: the run's last
    checkpoint, else generator.pt). The same arguments give the same samples.
    """
    import torch

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise TextbenchError(f"n={n!r}: expected 1 to {MAX_SAMPLES:,} samples")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (math.isfinite(temperature) and temperature > 0):
        raise TextbenchError(f"temperature={temperature!r}: expected a finite number > 0")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise TextbenchError(f"seed={seed!r}: expected 0 <= seed < 2**63")
    res = _as_run(run)
    suite, generator = res.load(checkpoint)
    ids = generator.sample(n, torch.Generator().manual_seed(seed), temperature=float(temperature))
    return suite.format_samples(ids) if _is_text(suite) else ids


def _is_text(suite) -> bool:
    from .suites.text import TextSuite

    return isinstance(suite, TextSuite)


# ---------------------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------------------


def evaluate(
    samples,
    references=None,
    *,
    suite: str | None = None,
    run: RunResult | str | os.PathLike | None = None,
    metrics: str | Sequence[str] | None = None,
    settings: Mapping[str, Any] | Sequence[str] | None = None,
    tokenizer: str = "nltk",
    lowercase: bool = False,
) -> Evaluation:
    """Score samples; returns an :class:`Evaluation` (a dict metric -> value, with ``.signature``).

    ``samples``: a file path (one sample per line), a list of sentences (str), a list of token lists, or token
    ids (a LongTensor / numpy array [N, L], or a list of id lists). Give exactly one of:

    * ``references`` (a file path or a list of sentences): BLEU-n, Self-BLEU-n and RS-BLEU-n (n = 1..9) as
      :func:`textbench.metrics.bleu.score_corpora` (``textbench eval --references``). ``metrics``: names such as
      ``"bleu-2,self-bleu-3"`` (default bleu-2..5); ``tokenizer`` (``nltk`` or ``whitespace``) and ``lowercase``
      apply to both sides; token lists are joined by spaces first; empty lines are skipped.
    * ``suite`` (a suite name) with its ``settings`` (as ``--set``): the suite's ``evaluate_samples``
      (``textbench eval --suite``): ``synthetic`` gives NLL_oracle (token ids under the oracle), the text suites
      BLEU-2..5, Self-BLEU-2..5 and RS-BLEU-2..5 against their test references (sentences are tokenized like
      the references).
    * ``run`` (a :class:`RunResult` or a run directory): the run's suite, as above, plus ``nll_generator``
      (and ``nll_generator_se``): the per-token NLL (nats) of the samples under the run's generator (text:
      positions up to and including the first ``<eos>``; words outside the vocabulary are ``<unk>``; sentences
      longer than the run's ``seq_len`` tokens are left out of it and counted in the signature).

    ``metrics`` (any mode) keeps only the named metrics, in that order.
    """
    given = [name for name, v in (("references", references), ("suite", suite), ("run", run)) if v is not None]
    if len(given) != 1:
        raise TextbenchError(f"give exactly one of references, suite or run (got {', '.join(given) or 'none'})")
    names = _metric_names(metrics)
    if references is not None:
        ev = _score_against_references(samples, references, list(DEFAULT_BLEU_METRICS) if names is None else names, tokenizer, lowercase)
    elif suite is not None:
        from .config import apply_overrides, validate_settings
        from .registry import SUITES

        suite_cls = SUITES.get(suite)
        suite_settings = apply_overrides(dict(suite_cls.defaults), _overrides(settings))
        validate_settings(suite_settings)
        s = suite_cls(suite_settings)
        x = s.read_samples(samples) if _is_path(samples) else _suite_samples(s, samples)
        ev = Evaluation(s.evaluate_samples(x), {"suite": s.signature(), "samples": str(samples) if _is_path(samples) else _describe(x)})
    else:
        if settings is not None:
            raise TextbenchError("settings apply to suite=...; a run's settings are its own")
        ev = _score_with_run(_as_run(run), samples)
    if names:
        unknown = [m for m in names if m not in ev]
        if unknown:
            raise TextbenchError(f"metric {unknown[0]!r} is not scored here; available: {', '.join(ev)}")
        ev = Evaluation({m: ev[m] for m in names}, ev.signature)
    return ev


def _metric_names(metrics) -> list[str] | None:
    if metrics is None:
        return None
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    return [str(m).strip() for m in items if str(m).strip()]


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _lines(x, what: str) -> tuple[list[str], list[str]]:
    """(non-empty lines, notes) of a file path or a list of sentences / token lists."""
    from .metrics.tokenize import read_lines

    if _is_path(x):
        lines = read_lines(x)
        return list(lines), [f"{x}: skipped {lines.skipped_empty} empty line(s)"] if lines.skipped_empty else []
    if _is_ids(x):
        raise TextbenchError(f"{what}: token ids need a suite or a run to decode them (suite=... or run=...)")
    try:
        items = list(x)
    except TypeError:
        raise TextbenchError(f"{what}: expected a file path or a list of sentences, not {type(x).__name__}") from None
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (list, tuple)) and all(isinstance(t, str) for t in item):
            out.append(" ".join(item))
        else:
            raise TextbenchError(f"{what}: expected sentences (str) or token lists, got an item {item!r:.60}")
    kept = [s for s in out if s.strip()]
    skipped = len(out) - len(kept)
    return kept, [f"{what}: skipped {skipped} empty line(s)"] if skipped else []


def _score_against_references(samples, references, metrics: list[str], tokenizer: str, lowercase: bool) -> Evaluation:
    from .metrics.bleu import parse_metric, score_corpora, score_files

    for m in metrics:
        parse_metric(m)  # names before data
    if _is_path(samples) and _is_path(references):
        scores = score_files(references, samples, metrics, tokenizer=tokenizer, lowercase=lowercase)
    else:
        hyps, notes = _lines(samples, "samples")
        refs, ref_notes = _lines(references, "references")
        scores = score_corpora(hyps, refs, metrics, tokenizer=tokenizer, lowercase=lowercase,
                               samples_name=Path(samples).name if _is_path(samples) else "samples",
                               references_name=Path(references).name if _is_path(references) else "references",
                               notes=notes + ref_notes)
    return Evaluation({name: s.value for name, s in scores.items()},
                      {name: str(s.signature) if not isinstance(s.signature, dict) else s.signature for name, s in scores.items()})


def _is_ids(x) -> bool:
    """A tensor / array of ids, or a non-empty list of lists of ints."""
    if type(x).__module__.split(".")[0] in ("torch", "numpy"):
        return True
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (list, tuple)) and x[0]:
        return all(isinstance(t, int) and not isinstance(t, bool) for t in x[0])
    return False


def _as_ids(x) -> torch.Tensor:
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except ValueError:
            raise TextbenchError("token ids: rows of different lengths; expected an array [N, seq_len]") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
            raise TextbenchError(f"token ids: expected integers [N, seq_len], got {arr.dtype} values")
        t = torch.from_numpy(arr.astype(np.int64))
    if t.dim() != 2:
        raise TextbenchError(f"token ids: expected shape [N, seq_len], got {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TextbenchError(f"token ids: expected an integer tensor, got {t.dtype}")
    return t.long().cpu()


def _check_ids(suite, ids: torch.Tensor) -> torch.Tensor:
    if ids.shape[0] == 0:
        raise TextbenchError("no samples to score")
    if ids.shape[1] != suite.seq_len:
        raise TextbenchError(f"token ids: {ids.shape[1]} per sample, this suite's sequences have {suite.seq_len}")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= suite.vocab_size:
        raise TextbenchError(f"token ids: id {lo if lo < 0 else hi} out of range [0, {suite.vocab_size})")
    return ids


def _suite_samples(suite, samples):
    """What ``suite.evaluate_samples`` takes: ids for the synthetic suite; sentences / token lists / ids for text."""
    if _is_text(suite) and not _is_ids(samples):
        return _text_samples(suite, samples)
    return _check_ids(suite, _as_ids(samples))


def _text_samples(suite, samples):
    from .metrics.tokenize import tokenize_lines
    from .suites.text import TextSamples

    items = list(samples)
    if all(isinstance(s, str) for s in items):
        return TextSamples(tokenize_lines(items, suite.tokenizer, suite.lowercase), {"source": "sentences", "sentences": len(items)})
    if all(isinstance(s, (list, tuple)) and all(isinstance(t, str) for t in s) for s in items):
        return TextSamples([list(s) for s in items], {"source": "token lists", "sentences": len(items)})
    raise TextbenchError("samples: expected sentences (str), token lists or token ids")


def _describe(x) -> str:
    import torch

    if isinstance(x, torch.Tensor):
        return f"token ids {tuple(x.shape)}"
    return f"{len(x)} samples"


def _score_with_run(res: RunResult, samples) -> Evaluation:
    import torch

    from .metrics.likelihood import nll_test, token_log_probs
    from .suites.vocab import EOS, UNK, eos_mask

    suite, generator = res.load()
    x = suite.read_samples(samples) if _is_path(samples) else _suite_samples(suite, samples)
    values = dict(suite.evaluate_samples(x))
    if isinstance(x, torch.Tensor):
        ids, info = x, {"sentences": int(x.shape[0])}
    else:  # token lists of a text suite: the run's ids (a sample without <eos> has seq_len tokens), if they fit
        L = suite.seq_len
        fit = [s for s in x if len(s) <= L]
        ids = torch.full((len(fit), L), EOS, dtype=torch.long)
        for i, s in enumerate(fit):
            ids[i, : len(s)] = torch.tensor(suite.vocab.encode(s), dtype=torch.long)
        info = {"sentences": len(fit), "dropped_over_seq_len": len(x) - len(fit),
                "unk_tokens": sum(suite.vocab.stoi.get(t, UNK) == UNK for s in fit for t in s)}
    mask = eos_mask(ids) if _is_text(suite) else None
    if ids.shape[0]:
        device = next(generator.parameters()).device
        lp = token_log_probs(generator, ids.to(device), mask=mask.to(device) if mask is not None else None).cpu()
        score = nll_test(lp, mask=mask)
        values["nll_generator"] = score.value
        values["nll_generator_se"] = score.se if score.se is not None else math.nan
    else:
        values["nll_generator"] = values["nll_generator_se"] = math.nan
    info["positions"] = "up to and including the first <eos>" if mask is not None else "every position"
    info["units"] = "nats/token"
    signature = {"run": str(res.path), "suite": suite.signature(),
                 "samples": str(samples) if _is_path(samples) else _describe(x), "nll_generator": info}
    return Evaluation(values, signature)
