"""The training-set step's public door (the implementation lives in :mod:`rstem_core.curate`).

>>> from rstem_core.curation import CurationParams, run_curation     # doctest: +SKIP
"""

from .curate import (
    STATISTICS,
    BeerLambertFit,
    CurationParams,
    CurationResult,
    background_level,
    fit_beer_lambert,
    log_statistic,
    normalised_histogram,
    run_curation,
    shot_noise_level,
    wasserstein,
)

__all__ = [
    "STATISTICS",
    "BeerLambertFit",
    "CurationParams",
    "CurationResult",
    "background_level",
    "fit_beer_lambert",
    "log_statistic",
    "normalised_histogram",
    "run_curation",
    "shot_noise_level",
    "wasserstein",
]
