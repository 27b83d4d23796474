"""bookcover.classifier.resnet builds torchvision's ResNet-34, bitwise, without importing it.

torchvision is a test dependency here (it is installed with torch): the same seed must give the
same initial weights and buffers, the same keys, and the same outputs, in training and eval
mode; and building or loading a classifier must not import torchvision (the cold start it saves).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from bookcover.classifier.resnet import ResNet34
from tests.conftest import REPO

torchvision = pytest.importorskip("torchvision")


def _theirs() -> torch.nn.Module:
    model = torchvision.models.resnet34(weights=None)
    model.fc = torch.nn.Identity()
    return model


def test_same_seed_same_weights_and_keys_as_torchvision():
    torch.manual_seed(3)
    ours = ResNet34().state_dict()
    after_ours = torch.rand(1)  # both consumed the random stream alike: what follows is the same
    torch.manual_seed(3)
    theirs = _theirs().state_dict()
    assert torch.equal(after_ours, torch.rand(1))
    assert list(ours) == list(theirs)
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name


@pytest.mark.parametrize("train", [False, True])
def test_same_outputs_and_gradients_as_torchvision(train):
    torch.manual_seed(0)
    ours, theirs = ResNet34(), _theirs()
    theirs.load_state_dict(ours.state_dict())
    ours.train(train)
    theirs.train(train)
    x = torch.randn(3, 3, 64, 64)
    a, b = ours(x), theirs(x)
    assert a.shape == (3, 512) and torch.equal(a, b)
    a.sum().backward()
    b.sum().backward()
    assert torch.equal(ours.conv1.weight.grad, theirs.conv1.weight.grad)
    assert torch.equal(ours.layer3[0].downsample[0].weight.grad, theirs.layer3[0].downsample[0].weight.grad)
    if train:  # the running statistics moved the same way
        assert torch.equal(ours.layer4[2].bn2.running_var, theirs.layer4[2].bn2.running_var)


def test_loading_a_classifier_does_not_import_torchvision(tmp_path):
    code = (
        "import sys, torch\n"
        "from bookcover.classifier.config import preset\n"
        "from bookcover.classifier.predict import build_model, load_classifier\n"
        "from bookcover.checkpoint import CLASSIFIER_KIND, save_atomic\n"
        "c = preset('quick', image_size=36, crop=32)\n"
        f"save_atomic({{'kind': CLASSIFIER_KIND, 'model': build_model(c).state_dict(), 'config': c.to_dict()}}, "
        f"{str(tmp_path / 'best.pt')!r})\n"
        f"load_classifier({str(tmp_path / 'best.pt')!r}, 'cpu')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('torchvision', 'torch._dynamo')))[:3])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
