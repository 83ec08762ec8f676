"""How much a synthetic run's models have memorised their training set.

    python scripts/memorisation.py results/runs/synthetic/cot/paper-seed0 [--checkpoint PATH]

Prints the per-token NLL (nats) of the run's generator G — and, for CoT, of its mediator M — on the training
set, on the held-out test set and on fresh oracle samples, and the oracle's NLL on the same data and on G's
samples (= NLL_oracle). A model that memorises has a much lower NLL on the training set than on the test set;
the oracle's NLL on its own samples is the entropy floor. Reads the last checkpoint (weights only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from textbench.engine.rundir import RunDir
from textbench.io import safe_torch_load
from textbench.models.lstm import LSTMLM
from textbench.suites.synthetic import SyntheticSuite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--checkpoint", type=Path, help="default: <run_dir>/checkpoints/last.pt")
    ap.add_argument("-n", type=int, default=9984, help="fresh oracle / generator samples")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rd = RunDir(args.run_dir)
    cfg = rd.read_config()
    s = cfg["settings"]
    suite = SyntheticSuite({k: s[k] for k in SyntheticSuite.defaults})
    state = safe_torch_load(args.checkpoint or rd.path / "checkpoints" / "last.pt")
    models = {"G": LSTMLM(suite.vocab_size, s["g_emb"], s["g_hidden"], suite.seq_len)}
    if "mediator" in state["modules"]:
        models["M"] = LSTMLM(suite.vocab_size, s["m_emb"], s["m_hidden"], suite.seq_len, two_biases=True)
    for name, model in models.items():
        model.load_state_dict(state["modules"]["generator" if name == "G" else "mediator"])
        model.eval()
    models["oracle"] = suite.oracle
    rng = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        data = {"train": suite.train, "test": suite.test, "oracle samples": suite.oracle.sample(args.n, rng),
                "G samples": models["G"].sample(args.n, rng)}
        print(f"{rd.path} at step {state['step']}: per-token NLL (nats)")
        print(f"{'model':8s}" + "".join(f"{k:>16s}" for k in data))
        for name, model in models.items():
            print(f"{name:8s}" + "".join(f"{-model.token_log_probs(x).mean().item():16.3f}" for x in data.values()))


if __name__ == "__main__":
    main()
