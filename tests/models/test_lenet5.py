import numpy as np
import pytest
import torch

from models.datasets import load_dataset
from models.lenet5 import LeNet5
from models.train import accuracy, train

torch.set_num_threads(1)


def test_mnist_split_is_fixed_balanced_and_padded():
    data = load_dataset("mnist")
    assert data.train_x.shape == (4000, 1, 32, 32) and data.test_x.shape == (1000, 1, 32, 32)
    assert data.train_x.dtype == np.float32 and 0.0 <= data.train_x.min() <= data.train_x.max() <= 1.0
    assert not data.train_x[:, :, :2].any() and not data.train_x[:, :, :, -2:].any()
    counts = np.bincount(data.test_y, minlength=10)
    assert counts.min() > 60 and counts.sum() == 1000      # shuffled: every class in the test split
    again = load_dataset("mnist")
    np.testing.assert_array_equal(again.test_y, data.test_y)


def test_fashion_mnist_comes_from_the_debian_package():
    data = load_dataset("fashion")
    assert data.train_x.shape == (60000, 1, 32, 32) and data.test_x.shape == (10000, 1, 32, 32)
    assert set(np.unique(data.test_y)) == set(range(10))


def test_unknown_dataset_and_variant_are_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="variant must be one of"):
        LeNet5(variant="sigmoid")


@pytest.mark.parametrize("variant", ["relu-max", "tanh-avg"])
def test_layer_shapes_follow_the_paper(variant):
    model = LeNet5(variant=variant)
    x = torch.zeros(2, 1, 32, 32)
    shapes = []
    for layer in model.features:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes[0] == (6, 28, 28) and shapes[2] == (6, 14, 14)
    assert shapes[3] == (16, 10, 10) and shapes[5] == (16, 5, 5) and shapes[6] == (120, 1, 1)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_two_epochs_learn_digits():
    model, info = train("mnist", "relu-max", epochs=2)
    data = load_dataset("mnist")
    assert info["float_test_accuracy"] == accuracy(model, data.test_x, data.test_y)
    assert info["float_test_accuracy"] > 0.75   # chance is 0.1
