"""``describe``: the human-readable summary printed by ``sabre data info PATH``."""
from __future__ import annotations

from .dataset import NUM_CLASSES, FederatedDataset

__all__ = ["describe"]

PIXEL_CONVENTION = ("uint8, 255 = white background, 0 = ink (LEAF/TFF float 1.0 = white); "
                    "model input float32 pixels/255, not inverted")


def describe(ds: FederatedDataset) -> str:
    """Formats :meth:`FederatedDataset.summary` as a few lines of text.

    Args:
      ds: the dataset.

    Returns:
      Multi-line text (no trailing newline): writer and image counts, per-writer image
      statistics, the label histogram per split, and the pixel convention.
    """
    s = ds.summary()
    per = s["per_client"]
    lines = [
        f"dataset      {s['name']}",
        f"writers      {s['num_clients']} ({s['num_train_clients']} with train data)",
        f"images       {s['num_images']} (train {s['num_train']}, test {s['num_test']})",
        "images per writer   min  median    mean   max",
    ]
    for key, label in (("all", "all writers"), ("train", "train, writers with train"),
                       ("test", "test")):
        st = per[key]
        lines.append(f"  {label:<26} {st['min']:>4} {st['median']:>7.1f} {st['mean']:>7.1f} "
                     f"{st['max']:>5}")
    header = "label        " + "".join(f"{d:>7}" for d in range(NUM_CLASSES)) + "    total"
    lines.append(header)
    for split in ("all", "train", "test"):
        hist = s["label_histogram"][split]
        lines.append(f"  {split:<10} " + "".join(f"{c:>7}" for c in hist) + f"{sum(hist):>9}")
    lines.append(f"pixels       {PIXEL_CONVENTION}")
    lines.append(f"             mean {s['mean_pixel']:.1f}/255, "
                 f"{100 * s['white_fraction']:.1f}% exactly white")
    return "\n".join(lines)
