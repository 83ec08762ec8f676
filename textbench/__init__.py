"""textbench: an open benchmark harness for training algorithms of generative models of text.

Cooperative Training (CoT, Lu et al., ICML 2019) and its baselines on fixed suites, with exact metrics,
seeded and resumable runs. See README.md.
"""

__version__ = "0.1.0"
