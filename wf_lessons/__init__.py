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
- ``train``           training: recipe and presets, loop, checkpoints, command line (``--dry-run``)
- ``headline``        the headline GPU run in one command (fits the epochs to a time budget)
- ``ablate``          the predictor study (chapter 07): grid, resumable command, summary, ``compare``
- ``pretrained``      trained course models shipped with the package, and their check
- ``bench``           benchmark commands
- ``diagrams``        schematic figures (attention as an MLP, dynamic layers, the blocks)
- ``checks``          argument checks shared by the package
- ``atomic``          atomic writes and exclusive run-name claims
- ``runlog``          run logs under ``data/runs/`` (what produced every quoted number)
- ``notebooks``       rendering chapters, checking them against their source, student copies
"""

__version__ = "0.1.0"
