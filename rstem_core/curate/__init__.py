"""Training-set curation: DCFI references and thickness matching of training areas (Supp. B).

:func:`run_curation` is the project step behind ``rstem curate``; :mod:`.stats` holds the
thickness statistics and the tomography series' Beer-Lambert calibration.
"""

from .stats import (
    STATISTICS,
    BeerLambertFit,
    background_level,
    fit_beer_lambert,
    log_statistic,
    normalised_histogram,
    shot_noise_level,
    wasserstein,
)
from .step import CurationParams, CurationResult, area_name, run_curation

__all__ = [
    "STATISTICS",
    "BeerLambertFit",
    "CurationParams",
    "CurationResult",
    "area_name",
    "background_level",
    "fit_beer_lambert",
    "log_statistic",
    "normalised_histogram",
    "run_curation",
    "shot_noise_level",
    "wasserstein",
]
