"""The registry of domain-separation labels (rangeproof/labels.py) is the only place labels are written."""
import pathlib
import re

from rangeproof import labels

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_labels_are_versioned_distinct_and_prefix_free():
    reg = labels.registry()
    values = list(reg.values())
    assert len(values) == len(set(values)) >= 20
    for name, value in reg.items():
        assert getattr(labels, name) == value
        assert re.fullmatch(rb"sabre/(rangeproof|secagg)/[A-Za-z0-9-]+/v[0-9]+", value), value
    for a in values:
        for b in values:
            assert a == b or not b.startswith(a), (a, b)


def test_no_other_module_writes_a_label():
    """No source file of the two crypto packages but the registry holds a label literal: a bytes
    literal starting with ``sabre``, or any literal starting with ``sabre/``."""
    pattern = re.compile(r"""(?:\b(?:b|rb|br)["']sabre)|(?:["']sabre/)""")
    offenders = []
    for package in ("rangeproof", "secagg"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "labels.py" and path.parent.name == "rangeproof":
                continue
            for no, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
