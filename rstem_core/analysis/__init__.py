"""Analysis of results: dislocation centres, positional errors against a reference."""

from .positions import Centres, PositionErrors, find_centres_yz, line_crossings_yz, pair_centres

__all__ = ["Centres", "PositionErrors", "find_centres_yz", "line_crossings_yz", "pair_centres"]
