"""Models: the CORAL-CNN classifier (and, later, the DCGAN)."""

from bookcover.models.coral_resnet import CoralResNet34

__all__ = ["CoralResNet34"]
