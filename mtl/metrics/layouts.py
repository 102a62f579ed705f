"""The task layouts of the paper's real datasets, for :func:`for_dataset`."""

from __future__ import annotations

from mtl.metrics.accumulator import MultiTaskMetrics, for_tasks

# The 40 attributes in the order of CelebA's ``list_attr_celeba.txt`` header.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

DATASET_TASKS: dict[str, dict[str, tuple[str, int | None]]] = {
    "cityscapes": {"segmentation": ("segmentation", 7), "depth": ("depth", None)},
    "nyuv2": {
        "segmentation": ("segmentation", 13),
        "depth": ("depth", None),
        "normal": ("normal", None),
    },
    "celeba": {name: ("binary", None) for name in CELEBA_ATTRIBUTES},
}


def for_dataset(name: str) -> MultiTaskMetrics:
    """The accumulator of dataset ``name``: Cityscapes (7-class segmentation, depth), NYUv2
    (13-class segmentation, depth, normals) or CelebA (its 40 binary attributes)."""
    if name not in DATASET_TASKS:
        raise ValueError(
            f"no metric layout for dataset {name!r}; known: {', '.join(DATASET_TASKS)} "
            "(for any other, use mtl.metrics.for_tasks({task: (kind, num_classes)}))"
        )
    return for_tasks(DATASET_TASKS[name])
