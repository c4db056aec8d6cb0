"""Random images of the network's input shape and random labels: for throughput only.

The images are uniform uint8 noise drawn from a generator seeded by --seed, so two runs
see the same bytes; the labels are uniform over the network's classes. Nothing can be
learnt from them: accuracy stays at chance. `--synthetic-size N` sets the training
split's size (the test split is a fifth of it).
"""

from __future__ import annotations

import torch

from resnet_dsl.train.data.dataset import Data, Split


def load(input_shape: tuple[int, int, int], size: int, num_classes: int, seed: int) -> Data:
    """`size` training and `size // 5` (at least 1) test images of shape `input_shape`.

    >>> d = load((3, 8, 8), 10, 4, seed=0)
    >>> d.train.images.shape, d.test.images.shape, d.num_classes
    (torch.Size([10, 3, 8, 8]), torch.Size([2, 3, 8, 8]), 4)
    """
    gen = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, *input_shape), generator=gen, dtype=torch.uint8)
        return Split(torch.randint(0, num_classes, (n,), generator=gen), images=images)

    c = input_shape[0]
    return Data(
        name="synthetic", train=split(size), test=split(max(1, size // 5)),
        classes=[str(i) for i in range(num_classes)], image_shape=input_shape,
        # uniform bytes: mean 127.5/255, standard deviation 73.9/255
        mean=(0.5,) * c, std=(0.2898,) * c,
        default_epochs=1, hflip=True, crop_padding=max(1, min(input_shape[1:]) // 8),
    )
