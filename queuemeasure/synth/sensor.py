"""Sensor models for coarse SYNTHETIC tiles: Sentinel-2 (10 m) and PlanetScope (3 m).

The scene is painted at a fine intermediate pixel (1 m for Sentinel-2, 0.5 m for
PlanetScope; vehicles by area coverage), converted to surface reflectance, then degraded
the way a push-broom or frame sensor does it:

1. optics: a Gaussian point-spread function, its width set by the system MTF at Nyquist
   (the detector's box aperture contributes ``sinc(0.5) = 0.637`` of it);
2. detector: the area average over each output pixel (exact, mean preserving);
3. the acquisition date: haze (additive path reflectance, strongest in blue, and a loss
   of contrast), the per-band gain and offset of the calibration / atmospheric
   correction, and a co-registration shift (applied when painting);
4. noise: signal dependent (dark + shot), given as the SNR at reflectance 0.1;
5. quantisation: by the product (:mod:`.products`).

Everything here is pure numpy on arrays; :mod:`.sensor_render` drives it block by block.
Bands are in Sentinel-2 order: blue (B02), green (B03), red (B04), NIR (B08).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import OptionError

__all__ = ["SensorModel", "DateModel", "SENSORS", "get_sensor", "psf_sigma_px", "degrade",
           "to_reflectance", "apply_date", "add_noise", "random_reference_date", "tile_date"]

#: Reflectance per display unit of the fine renderer's R, G, B and NIR channels.
#: The renderer's colours are display-referred (a TCI-like 0..1, where 1 is reflectance
#: about 0.3); its NIR channel is scaled so that vegetation lands near 0.25-0.4.
DISPLAY_TO_REFLECTANCE = (0.3, 0.3, 0.3, 0.5)

#: Haze path reflectance at haze 1 (blue, green, red, NIR): Rayleigh-like, bluest first.
HAZE_PATH = (0.10, 0.075, 0.055, 0.03)
#: Share of the surface signal lost to haze at haze 1 (transmittance 1 - HAZE_LOSS).
HAZE_LOSS = 0.35

_SINC_HALF = 2.0 / np.pi          # sinc(0.5): MTF of a box pixel at Nyquist


@dataclass(frozen=True)
class SensorModel:
    """A coarse sensor.

    Parameters
    ----------
    name : str
        "sentinel2" or "planetscope".
    gsd_m : float
        Output pixel size in ground metres.
    render_gsd_m : float
        Intermediate pixel the scene is painted at (the output pixel is an integer
        multiple of it).
    supersample : int
        Sub-samples per side of each intermediate pixel.
    mtf_nyquist : float
        System MTF at the output Nyquist frequency (optics and detector).
    snr : tuple of 4 float
        Signal-to-noise ratio at reflectance 0.1 per band (blue, green, red, NIR).
    band_names : tuple of 4 str
        Band descriptions written into uint16 and float products.
    max_shift_m : float
        Largest co-registration shift of a random reference date.
    band_time_s : tuple of 4 float
        When each band (blue, green, red, NIR) is sensed, seconds after the first: a
        moving vehicle stands elsewhere in each band (Sentinel-2's push-broom: B03 0.527 s,
        B04 1.005 s, B08 0.264 s after B02). Queued and parked vehicles do not move.
    """

    name: str
    gsd_m: float
    render_gsd_m: float
    supersample: int
    mtf_nyquist: float
    snr: tuple = (150.0, 160.0, 140.0, 170.0)
    band_names: tuple = ("B02", "B03", "B04", "B08")
    max_shift_m: float = 3.0
    band_time_s: tuple = (0.0, 0.0, 0.0, 0.0)

    @property
    def factor(self) -> int:
        """Intermediate pixels per output pixel side."""
        return max(1, int(round(self.gsd_m / self.render_gsd_m)))

    @property
    def fine_gsd_m(self) -> float:
        """The intermediate pixel actually used (``gsd_m / factor``)."""
        return self.gsd_m / self.factor

    @property
    def psf_sigma_px(self) -> float:
        """Gaussian optics sigma in output pixels (see :func:`psf_sigma_px`)."""
        return psf_sigma_px(self.mtf_nyquist)

    def validate(self) -> None:
        """Raise :class:`~queuemeasure.errors.OptionError` on an out-of-range value."""
        if not 1.5 <= self.gsd_m <= 60:
            raise OptionError(f"sensor pixel size must be within 1.5..60 m, not {self.gsd_m}")
        if not 0.1 <= self.fine_gsd_m <= 1.0 + 1e-9:
            raise OptionError(f"render pixel must be within 0.1..1.0 m, not {self.fine_gsd_m:.3g}")
        if not 0.02 <= self.mtf_nyquist <= 0.63:
            raise OptionError(f"MTF at Nyquist must be within 0.02..0.63, not {self.mtf_nyquist}")
        if len(self.snr) != 4 or min(self.snr) <= 0:
            raise OptionError("snr must be four positive values")
        if self.supersample not in (1, 2, 3, 4):
            raise OptionError("supersample must be 1..4")

    def as_dict(self) -> dict:
        """JSON-friendly parameters (for tags and truth files)."""
        d = asdict(self)
        d.update(snr=list(self.snr), band_names=list(self.band_names), band_time_s=list(self.band_time_s),
                 factor=self.factor, fine_gsd_m=self.fine_gsd_m, psf_sigma_px=self.psf_sigma_px)
        return d


#: The two sensors. Sentinel-2's 10 m bands: MTF at Nyquist about 0.3 (requirement
#: 0.15-0.3), SNR 140-170 at the reference radiance. PlanetScope (Dove) 3 m ortho
#: product: resampled from about 3.7 m, blurrier (MTF ~0.2) and noisier; its bands are
#: taken as simultaneous.
SENSORS = {
    "sentinel2": SensorModel("sentinel2", gsd_m=10.0, render_gsd_m=1.0, supersample=1,
                             mtf_nyquist=0.28, snr=(150.0, 160.0, 140.0, 170.0),
                             band_names=("B02", "B03", "B04", "B08"), max_shift_m=3.0,
                             band_time_s=(0.0, 0.527, 1.005, 0.264)),
    "planetscope": SensorModel("planetscope", gsd_m=3.0, render_gsd_m=0.5, supersample=1,
                               mtf_nyquist=0.2, snr=(70.0, 80.0, 75.0, 90.0),
                               band_names=("blue", "green", "red", "nir"), max_shift_m=4.0),
}


def get_sensor(name: str | SensorModel, **overrides) -> SensorModel:
    """A sensor by name, with fields overridden (``None`` values are ignored).

    Raises
    ------
    OptionError
        Unknown sensor or a bad value.
    """
    if isinstance(name, SensorModel):
        base = name
    else:
        try:
            base = SENSORS[str(name).lower().replace("-", "").replace("_", "")]
        except KeyError:
            raise OptionError(f"unknown sensor {name!r}: choose sentinel2 or planetscope") from None
    model = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    model.validate()
    return model


@dataclass(frozen=True)
class DateModel:
    """The acquisition conditions of one date.

    Parameters
    ----------
    haze : float
        0 (clear) to 1 (thick haze).
    gain, offset : tuple of 4 float
        Per-band calibration: observed = gain * reflectance + offset.
    shift_m : (float, float)
        Co-registration error (east, north) in ground metres: the pixel labelled at
        position p shows the ground at p + shift.
    sun_azimuth_deg, sun_elevation_deg : float or None
        The sun (``None``: the scene's).
    cloud : float or None
        Thin-cloud cover 0..1 (``None``: the scene's).
    noise_seed : int
        Seed of this date's sensor noise.
    haze_seed : int
        Seed of the haze's variation in space.
    label : str
        "tile" or "reference".
    """

    haze: float = 0.15
    gain: tuple = (1.0, 1.0, 1.0, 1.0)
    offset: tuple = (0.0, 0.0, 0.0, 0.0)
    shift_m: tuple = (0.0, 0.0)
    sun_azimuth_deg: float | None = None
    sun_elevation_deg: float | None = None
    cloud: float | None = None
    noise_seed: int = 0
    haze_seed: int = 0
    label: str = "tile"

    def as_tags(self) -> dict:
        """GeoTIFF tags recording this date (band order blue, green, red, NIR)."""
        tags = {"DATE_ROLE": self.label, "HAZE": f"{self.haze:.4f}",
                "SHIFT_X_M": f"{self.shift_m[0]:.4f}", "SHIFT_Y_M": f"{self.shift_m[1]:.4f}",
                "GAIN": ",".join(f"{g:.5f}" for g in self.gain),
                "OFFSET": ",".join(f"{o:.5f}" for o in self.offset),
                "NOISE_SEED": str(self.noise_seed), "HAZE_SEED": str(self.haze_seed)}
        if self.sun_azimuth_deg is not None:
            tags["SUN_AZIMUTH_DEG"] = f"{self.sun_azimuth_deg:.2f}"
        if self.sun_elevation_deg is not None:
            tags["SUN_ELEVATION_DEG"] = f"{self.sun_elevation_deg:.2f}"
        return tags


def random_reference_date(seed: int, sensor: SensorModel, *, sun_azimuth_deg: float,
                          sun_elevation_deg: float, max_shift_m: float | None = None) -> DateModel:
    """Another date of the same road: other sun, haze, gain, offset and a shift.

    Parameters
    ----------
    seed : int
        The scene seed (the reference's parameters are drawn from it).
    sensor : SensorModel
    sun_azimuth_deg, sun_elevation_deg : float
        The tile date's sun (the reference's differs from it).
    max_shift_m : float, optional
        Largest shift (default: the sensor's ``max_shift_m``).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EF])
    smax = sensor.max_shift_m if max_shift_m is None else float(max_shift_m)
    r = smax * np.sqrt(rng.uniform(0.05, 1.0))
    th = rng.uniform(0, 2 * np.pi)
    gain = tuple(float(g) for g in np.clip(rng.normal(1.0, 0.06, 4), 0.85, 1.15))
    offset = tuple(float(o) for o in np.clip(rng.normal(0.0, 0.008, 4), -0.02, 0.02))
    return DateModel(haze=float(rng.uniform(0.0, 0.45)), gain=gain, offset=offset,
                     shift_m=(float(r * np.cos(th)), float(r * np.sin(th))),
                     sun_azimuth_deg=float((sun_azimuth_deg + rng.uniform(-30, 30)) % 360),
                     sun_elevation_deg=float(np.clip(sun_elevation_deg + rng.uniform(-15, 15), 15, 75)),
                     cloud=0.0, noise_seed=int(rng.integers(0, 2**31)),
                     haze_seed=int(rng.integers(0, 2**31)), label="reference")


def tile_date(spec) -> DateModel:
    """The conditions of the tile's own date: the spec's haze, sun and cloud, no gain,
    offset or shift; its noise and haze seeds drawn from the scene seed."""
    rng = np.random.default_rng([int(spec.seed) & 0xFFFFFFFF, 0x711E])
    return DateModel(haze=spec.haze, sun_azimuth_deg=spec.sun_azimuth_deg,
                     sun_elevation_deg=spec.sun_elevation_deg, cloud=spec.cloud,
                     noise_seed=int(rng.integers(0, 2**31)), haze_seed=int(rng.integers(0, 2**31)),
                     label="tile")


def psf_sigma_px(mtf_nyquist: float) -> float:
    """Gaussian optics sigma (output pixels) giving a system MTF ``mtf_nyquist`` at Nyquist.

    The system MTF is the optics' ``exp(-2 pi^2 sigma^2 f^2)`` times the pixel's
    ``sinc(f)``; at ``f = 0.5`` cycles per pixel the pixel alone gives 0.637, so an MTF
    at or above that needs no optical blur.
    """
    ratio = float(mtf_nyquist) / _SINC_HALF
    if ratio >= 1.0:
        return 0.0
    return float(np.sqrt(-2.0 * np.log(ratio)) / np.pi)


def to_reflectance(display: np.ndarray) -> np.ndarray:
    """Renderer channels (R, G, B, NIR display units) to reflectance in band order
    blue, green, red, NIR."""
    scale = np.asarray(DISPLAY_TO_REFLECTANCE, np.float32)[[2, 1, 0, 3]]
    return display[[2, 1, 0, 3]] * scale.reshape(4, *([1] * (display.ndim - 1)))


def degrade(fine: np.ndarray, factor: int, sigma_px: float,
            valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Blur with the optics PSF and area-average to the output grid.

    Parameters
    ----------
    fine : ndarray, shape (bands, H, W)
        Radiance (reflectance) at the intermediate pixel; H and W multiples of ``factor``.
    factor : int
        Intermediate pixels per output pixel side.
    sigma_px : float
        Gaussian optics sigma in *output* pixels.
    valid : ndarray of bool, shape (H, W), optional
        Painted pixels; the blur is normalised over them (no dark fringe at the edge
        of the painted area).

    Returns
    -------
    coarse : ndarray, shape (bands, H // factor, W // factor), float32
    coarse_valid : ndarray of bool
        Output pixels whose whole footprint was valid.
    """
    fine = np.asarray(fine, np.float32)
    b, H, W = fine.shape
    if H % factor or W % factor:
        raise ValueError("the fine image must be a whole number of output pixels")
    v = np.ones((H, W), np.float32) if valid is None else np.asarray(valid, np.float32)
    sig = sigma_px * factor
    out = np.empty_like(fine)
    if sig > 0:
        w = gaussian_filter(v, sig, mode="nearest", truncate=3.0)
        for k in range(b):
            num = gaussian_filter(fine[k] * v, sig, mode="nearest", truncate=3.0)
            out[k] = np.where(w > 1e-6, num / np.maximum(w, 1e-6), 0.0)
    else:
        out[:] = fine * v
    h, wd = H // factor, W // factor
    coarse = out.reshape(b, h, factor, wd, factor).mean(axis=(2, 4))
    cv = v.reshape(h, factor, wd, factor).mean(axis=(1, 3)) >= 0.999
    return coarse.astype(np.float32), cv


def apply_date(refl: np.ndarray, date: DateModel, haze_field: np.ndarray | None = None) -> np.ndarray:
    """Haze and per-band gain/offset of an acquisition date (bands blue, green, red, NIR).

    ``haze_field`` (same shape as one band, about 0.8..1.2) modulates the haze in space.
    """
    h = np.float32(date.haze)
    if haze_field is not None:
        h = h * np.asarray(haze_field, np.float32)
    path = np.asarray(HAZE_PATH, np.float32).reshape(4, *([1] * (refl.ndim - 1)))
    hazy = refl * (1 - HAZE_LOSS * h) + path * h
    g = np.asarray(date.gain, np.float32).reshape(path.shape)
    o = np.asarray(date.offset, np.float32).reshape(path.shape)
    return (hazy * g + o).astype(np.float32)


def add_noise(refl: np.ndarray, snr, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent sensor noise: variance ``dark^2 + c * reflectance`` per band,
    with the SNR ``snr[b]`` at reflectance 0.1 (30 % of that variance is dark noise)."""
    snr = np.asarray(snr, np.float32).reshape(4, *([1] * (refl.ndim - 1)))
    s_ref = np.float32(0.1) / snr
    var = 0.3 * s_ref ** 2 + 0.7 * s_ref ** 2 * np.clip(refl, 0, None) / np.float32(0.1)
    return (refl + rng.standard_normal(refl.shape, dtype=np.float32) * np.sqrt(var)).astype(np.float32)
