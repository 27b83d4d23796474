"""--init: the backbone starts from a local torchvision ResNet-34 state dict; wrong files fail in one line."""

import pytest
import torch
import torchvision
from click.testing import CliRunner

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier.model import CoralResNet34, load_backbone_init
from bookcover.cli import main
from bookcover.errors import CheckpointError


@pytest.fixture(scope="module")
def resnet34_state(tmp_path_factory):
    """A saved random ResNet-34 (torchvision keys, fc included), standing in for ImageNet weights."""
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("init") / "resnet34.pt"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    return path


def test_backbone_loads_every_key_but_fc(resnet34_state):
    model = CoralResNet34()
    load_backbone_init(model, resnet34_state)
    saved = torch.load(resnet34_state, weights_only=True)
    for name, tensor in model.backbone.state_dict().items():
        torch.testing.assert_close(tensor, saved[name], msg=name)


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "not a loadable state dict"),
    (lambda p: torch.save({"kind": "x", "model": "weights"}, p), "expected a torchvision ResNet-34 state dict"),
    (lambda p: torch.save(torchvision.models.resnet18().state_dict(), p), "not a torchvision ResNet-34"),
    (lambda p: torch.save({**torchvision.models.resnet34().state_dict(), "conv1.weight": torch.zeros(3)}, p),
     "conv1.weight has shape"),
])
def test_wrong_files_are_one_line_errors(tmp_path, make, message):
    path = tmp_path / "init.pt"
    make(path)
    with pytest.raises(CheckpointError, match=message):
        load_backbone_init(CoralResNet34(), path)


def test_train_starts_from_init_and_cli_refuses_a_bad_one(resnet34_state, synth_covers, tmp_path):
    from bookcover.classifier.train import train_classifier
    from tests.conftest import tiny_config

    cfg = tiny_config(synth_covers, epochs=1, lr=1e-12, init=str(resnet34_state))  # lr ~0: weights stay put
    train_classifier(cfg, tmp_path / "run", quiet=True)
    trained = load_checkpoint(tmp_path / "run" / "last.pt", CLASSIFIER_KIND)["model"]
    saved = torch.load(resnet34_state, weights_only=True)
    torch.testing.assert_close(trained["backbone.conv1.weight"], saved["conv1.weight"], atol=1e-6, rtol=0)

    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    result = CliRunner().invoke(main, ["train", "--data", str(synth_covers), "--out", str(tmp_path / "r2"),
                                       "--init", str(bad), "--quiet"])
    assert result.exit_code != 0 and "not a loadable state dict" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r2" / "last.pt").exists()
