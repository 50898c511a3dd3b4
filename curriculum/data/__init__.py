"""Data: dataset names -> arrays (:mod:`.datasets`), where the arrays come from (:mod:`.sources`; the
standard datasets' original files, :mod:`.originals`),
the generated sets (:mod:`.synthetic`, :mod:`.shapes`), their generating factors (:mod:`.factors`)
and the probe sets (:mod:`.probes`).

    from curriculum.data import load_dataset
    dataset = load_dataset("digits")
"""

from scoring.lazy import lazy_exports

_EXPORTS = {
    "Dataset": "curriculum.data.datasets",
    "Split": "curriculum.data.datasets",
    "list_datasets": "curriculum.data.datasets",
    "load_dataset": "curriculum.data.datasets",
    "datasets": "curriculum.data.datasets",
    "factors": "curriculum.data.factors",
    "originals": "curriculum.data.originals",
    "probes": "curriculum.data.probes",
    "shapes": "curriculum.data.shapes",
    "sources": "curriculum.data.sources",
    "synthetic": "curriculum.data.synthetic",
}

__getattr__, __dir__, __all__ = lazy_exports("curriculum.data", _EXPORTS)
