"""`textbench settings`: every setting with its value, where the value comes from, its default, type and help."""

from click.testing import CliRunner

from textbench.cli import main
from textbench.engine.loop import resolve_settings, settings_sources


def test_settings_sources_follow_the_resolution_layers():
    src = settings_sources("maligan", "synthetic", "paper", ["d_lr=0.001"])
    assert set(src) == set(resolve_settings("maligan", "synthetic", "paper"))
    assert src["batch_size"] == (64, "engine")
    assert src["d_dropout"] == (0.0, "algorithm maligan")  # MaliGAN's own default
    assert src["adv_g_steps"][1] == "profile paper" and src["steps"] == (1000, "profile paper")
    assert src["d_lr"] == (0.0001, "--set")
    cot = settings_sources("cot", "coco", "quick")
    assert cot["steps"][1] == "profile quick on coco"  # the suite-specific profile of CoT


def test_settings_command_prints_source_default_and_help():
    out = CliRunner().invoke(main, ["settings", "--algo", "maligan", "--suite", "synthetic", "--profile", "paper",
                                    "--set", "d_lr=0.001"])
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line for line in out.output.splitlines()}
    assert lines["key"].split()[:5] == ["key", "value", "from", "default", "type/range"]
    assert "0.001" in lines["d_lr"] and "--set" in lines["d_lr"] and "0.0001" in lines["d_lr"]
    assert "discriminator Adam learning rate" in lines["d_lr"]
    assert "profile paper" in lines["eval_every"]
    bad = CliRunner().invoke(main, ["settings", "--algo", "maligan", "--suite", "synthetic", "--set", "d_lr=-1"])
    assert bad.exit_code != 0 and "d_lr" in bad.output
