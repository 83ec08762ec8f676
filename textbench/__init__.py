"""textbench: an open benchmark harness for training algorithms of generative models of text.

Cooperative Training (CoT, Lu et al., ICML 2019) and its baselines on fixed suites, with exact metrics,
seeded and resumable runs. See README.md.

The Python API (:mod:`textbench.api`; the CLI commands run, generate and eval use the same functions)::

    import textbench
    res = textbench.run("mle", "synthetic", settings={"oracle": "seeded"}, results="/tmp/tb")   # -> RunResult
    res.metrics, res.final, res.generator                    # DataFrame, final metrics, the trained model
    textbench.load_run(res.path)                             # open an existing run directory
    textbench.generate(res, 10, temperature=0.8, seed=0)     # token ids (synthetic) or lines (text suites)
    textbench.evaluate(samples, run=res)                     # or references=..., or suite=...
    textbench.sweep(["mle", "cot"], "synthetic", seeds=[0, 1])  # a grid of runs (textbench.sweeps module)
"""

__version__ = "0.1.0"

from .api import Evaluation, RunResult, evaluate, generate, load_run, run  # noqa: E402
from .errors import TextbenchError  # noqa: E402
from .sweeps import sweep  # noqa: E402  (the function; its module is textbench.sweeps)

__all__ = ["__version__", "run", "load_run", "generate", "evaluate", "RunResult", "Evaluation", "TextbenchError", "sweep"]
