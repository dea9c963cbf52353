"""Physics knobs of the synthetic experiment: contrast, scan artefacts, detector chain.

Each is a frozen dataclass nested in :class:`~rstem_core.simulate.config.SimulationConfig`; ranges
``(lo, hi)`` are sampled per experiment (per training area for the specimen-related ones).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContrastParams:
    """Bright-field two-beam diffraction contrast of dislocations in a thick steel slab.

    Attributes
    ----------
    absorption_length_nm : float
        Background intensity is ``exp(-t_eff / absorption_length_nm)`` with ``t_eff = t / cos(theta)``.
    line_fwhm_nm : float
        Full width at half maximum of a dislocation's strain-contrast line (BF STEM: 10-20 nm).
    broadening_nm : float
        Extra Gaussian sigma of beam broadening at 300 nm effective thickness; grows as t_eff^1.5.
    max_line_contrast : float
        Saturation level of the line darkening (fraction of the local background, < 1).
    line_strength : float
        Darkening slope: a line perpendicular to the beam at full visibility darkens the background
        by ``max_line_contrast * (1 - exp(-line_strength))``.
    fade_length_nm : float
        Line contrast falls as ``exp(-(t_eff - t) / fade_length_nm)`` at high tilt.
    extinction_nm : float
        Period of the depth oscillation of the line contrast along the beam path.
    oscillation : float
        Relative amplitude of that depth oscillation (0..1).
    surface_layer_nm : float
        Depth over which line contrast rises from zero at the entrance and exit surfaces.
    image_side_nm : float
        The dark line lies this far to one side of the true core (sign per dislocation, g.b s).
    visibility : tuple of float
        Range of the per-dislocation visibility factor (|g.b| and character).
    bend_contours : tuple of int
        Range of the number of bend-contour families.
    bend_depth : tuple of float
        Range of a bend contour's darkening (fraction of the background).
    bend_width_nm : tuple of float
        Range of a bend contour's Gaussian half width.
    bend_speed_nm_per_deg : tuple of float
        Range of how far a bend contour moves across the specimen per degree of tilt.
    wedge : float
        Maximum relative thickness change across the field (a slightly wedge-shaped foil).
    """

    absorption_length_nm: float = 600.0
    line_fwhm_nm: float = 12.0
    broadening_nm: float = 1.5
    max_line_contrast: float = 0.65
    line_strength: float = 0.8
    fade_length_nm: float = 1200.0
    extinction_nm: float = 70.0
    oscillation: float = 0.35
    surface_layer_nm: float = 12.0
    image_side_nm: float = 3.0
    visibility: tuple[float, float] = (0.45, 1.0)
    bend_contours: tuple[int, int] = (2, 3)
    bend_depth: tuple[float, float] = (0.12, 0.3)
    bend_width_nm: tuple[float, float] = (100.0, 250.0)
    bend_speed_nm_per_deg: tuple[float, float] = (10.0, 35.0)
    wedge: float = 0.03


@dataclass(frozen=True)
class ScanParams:
    """Scan-system artefacts of the rapid scan (the slow scan is taken as ideal).

    Attributes
    ----------
    shrink_uniform : tuple of float
        Range of the uniform part of the x shrinkage (fraction, 0.04 = 4 %).
    shrink_edge : tuple of float
        Range of the extra local shrinkage at the scan start (left edge), decaying across the row.
    edge_length : tuple of float
        Range of the decay length of the edge shrinkage, as a fraction of the row.
    shrink_y_dependence : float
        Relative change of the edge shrinkage from the top to the bottom row.
    x_offset_px : float
        Maximum offset of the rapid scan's centre (at 512 px; scaled with the size).
    y_settle_px : tuple of float
        Range of the slow-scan settling at the frame top (rows shift down by this at row 0,
        decaying over 5 % of the rows; at 512 px, scaled with the size).
    line_jitter_px : float
        Standard deviation of the random per-row x jitter of the line start.
    flyback : float
        Flyback time as a fraction of the active line time (for the temporal noise path).
    """

    shrink_uniform: tuple[float, float] = (0.03, 0.05)
    shrink_edge: tuple[float, float] = (0.10, 0.18)
    edge_length: tuple[float, float] = (0.08, 0.14)
    shrink_y_dependence: float = 0.15
    x_offset_px: float = 2.0
    y_settle_px: tuple[float, float] = (0.3, 0.9)
    line_jitter_px: float = 0.12
    flyback: float = 0.15


@dataclass(frozen=True)
class DetectorParams:
    """The bright-field detector chain: shot noise, gain fluctuation, afterglow, digitisation.

    Noise-model parameters are given for the rapid scan's dwell time; the slow scan (dwell longer by
    ``slow_frame_time / frame_time``) gets the afterglow length divided and the streak amplitudes
    divided by the square root of that ratio.

    Attributes
    ----------
    rapid_gain_adu_per_e : float
        Digital units per detected electron in rapid frames.
    slow_gain_adu_per_e : float
        Digital units per detected electron in slow frames.
    afterglow_fraction : float
        Share of a pixel's signal released later, as a causal exponential tail along +x.
    afterglow_px : float
        Decay length of that tail in rapid-scan pixels.
    streak_gain : float
        Relative standard deviation of the beam-current / detector-gain fluctuation.
    streak_baseline_e : float
        Standard deviation of the additive detector-baseline fluctuation, electrons per pixel.
    streak_length : float
        Correlation length of both fluctuations along the scan path, as a fraction of a row
        (rows lie a row plus the flyback apart, so neighbouring rows are nearly independent).
    hum : float
        Relative amplitude of a 50 Hz mains modulation of the gain.
    """

    rapid_gain_adu_per_e: float = 4.0
    slow_gain_adu_per_e: float = 1.0
    afterglow_fraction: float = 0.35
    afterglow_px: float = 2.5
    streak_gain: float = 0.08
    streak_baseline_e: float = 0.4
    streak_length: float = 0.3
    hum: float = 0.01
