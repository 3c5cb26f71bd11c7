"""wf-lessons: the helper package of the WeightFormer course.

Modules (each introduced by a chapter, each reusable in coursework):

- ``config``          quick mode, data folder, device, seeding
- ``envcheck``        is this machine ready for the course?
- ``exercises``       every chapter's exercise checkers (``exercises.ch01`` ...) and the helpers they share
- ``data``            CIFAR-10 as uint8 tensors, device-resident batch iterator
- ``attention``       softmax attention read as an MLP with predicted weights
- ``complexity``      counted FLOPs and timing helpers
- ``dynamic_linear``  dynamic linear layers (every weight predictor)
- ``dynamic_dwconv``  dynamic depthwise convolutions (every kernel predictor)
- ``models``          WeightFormer, the ViT/DeiT baseline, named configurations
- ``erf``             effective receptive fields
- ``augment``         batched augmentations on the device (RandAugment, erasing, mixup, CutMix)
- ``train``           the training loop and its command line
- ``bench``           benchmark commands
- ``runlog``          run logs under ``data/runs/`` (what produced every quoted number)
- ``notebooks``       rendering chapters and checking that they match their source
"""

__version__ = "0.1.0"
