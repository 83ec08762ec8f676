"""The shared engine: training loop, evaluation cadence, checkpoints, run directories, replay."""
