"""One job description for both faces: what to animate, how the loop looks, where it goes.

A `Job` is a small tree of dataclasses (`MotionSpec`, `LoopSpec`, `OutputSpec`) with one `validate()` and a
plain-dict form (`to_dict` / `from_dict`) that the batch journal and worker processes use. Every bound and
default of a user-facing setting is written once, in `PARAMS`: the command line's options
(`operators/cli/parser.py`), the Blender properties (`operators/properties.py`) and `validate()` are made
from it, and a test checks that the three agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import InputError

PREDICTED_SOURCES = ("auto", "hints", "model")  # what core.motion.predict_motion computes
MOTION_SOURCES = PREDICTED_SOURCES + ("field",)  # "field": a given field (a file, Blender's field image)
FORMATS = ("mp4", "png", "exr", "gif", "webp")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Param:
    """Bounds, default and help of one numeric setting: the one place they are written."""

    kind: type  # int or float
    default: float
    min: float
    max: float
    soft_max: float | None = None  # Blender's slider range
    help: str = ""

    def check(self, name: str, value) -> None:
        ok_type = isinstance(value, int) and not isinstance(value, bool) if self.kind is int else (
            isinstance(value, int | float) and not isinstance(value, bool))
        if not ok_type or not (math.isfinite(value) and self.min <= value <= self.max):
            what = "a whole number" if self.kind is int else "a number"
            raise InputError(f"{name} must be {what} from {_num(self.min)} to {_num(self.max)}, got {_short(value)}")


def _num(x: float) -> str:
    return f"{x:g}"


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


PARAMS: dict[str, Param] = {
    "frames": Param(int, 60, 2, 100_000, 600, "loop length in frames; frame N is frame 0 again"),
    "fps": Param(float, 30.0, 1.0, 240.0, None, "frames per second of the loop"),
    "speed": Param(float, 1.0, 0.0, 100.0, 4.0, "multiplies the motion: 2 moves everything twice as far"),
    "feather_px": Param(float, 12.0, 0.0, 1000.0, 100.0,
                        "fade the motion over at least this many pixels where it crosses the mask edge, or runs along "
                        "a stretch of it that is not an edge of the photo (wider where one loop moves pixels farther: "
                        "over the distance they travel)"),
    "max_size": Param(int, 0, 0, 65_536, None, "downscale photos whose longer side exceeds this (0: never)"),
}


@dataclass
class MotionSpec:
    """Where the motion field comes from. Paths are plain strings (a job travels as a dict)."""

    source: str = "auto"  # auto | hints | model | field
    field_path: str | None = None  # source == "field" on the command line (FIELD.exr / FIELD.npy)
    hints_path: str | None = None
    mask_path: str | None = None
    model_path: str | None = None  # None: the shipped model
    feather_px: float = PARAMS["feather_px"].default
    sidecar_hints: bool = True  # use IMAGE's <stem>.hints.json when no hints file is given
    sky: bool = True  # without arrows: clouds drift sideways, a clear sky stays still (core.sky)

    @property
    def uses_sidecar(self) -> bool:
        """Whether a photo's own <stem>.hints.json may give the hints: predicted motion that reads hints."""
        return self.sidecar_hints and self.source in ("auto", "hints")


@dataclass
class LoopSpec:
    """How the loop is rendered from the photo and its field."""

    frames: int = PARAMS["frames"].default
    fps: float = PARAMS["fps"].default
    speed: float = PARAMS["speed"].default
    # softmax importance: "magnitude" (moving pixels in front), "-magnitude", "none"
    z: str = "magnitude"
    z_gain: float = 1.0
    fill_holes: bool = True
    # "coverage": each stream normalised on its own and blended by alpha x its smoothed coverage;
    # "single": the paper's one joint normalisation.
    blend: str = "coverage"
    max_travel: float = 0.04  # warn when a pixel travels more than this fraction of the diagonal per loop
    # "sharp": streams splat source coordinates and the photo is resampled once there (base bilinear, finest
    # detail from whole pixels), blended with its detail kept; "splat": colours splatted (faster, softer)
    renderer: str = "sharp"
    crossfade: float = 0.3  # sharp: each pixel crosses from one stream to the other over this part of the loop
    phase_spread: float = 0.7  # sharp: how far apart in the loop different regions cross over

    def validate(self) -> None:
        for name in ("frames", "fps", "speed"):
            PARAMS[name].check(name, getattr(self, name))
        if self.blend not in ("coverage", "single"):
            raise InputError(f"blend must be coverage or single, got {self.blend!r}")
        if self.renderer not in ("sharp", "splat"):
            raise InputError(f"renderer must be sharp or splat, got {self.renderer!r}")
        if not (0.0 < self.crossfade <= 1.0 and 0.0 <= self.phase_spread <= 1.0):
            raise InputError("crossfade must be in (0, 1] and phase_spread in [0, 1]")
        if self.z not in ("magnitude", "-magnitude", "none"):
            raise InputError(f"z must be magnitude, -magnitude or none, got {self.z!r}")


MP4_QUALITIES = ("perceptual", "lossless")


@dataclass
class OutputSpec:
    fmt: str = "mp4"  # mp4 | png | exr | gif | webp
    overwrite: bool = False
    # H.264: "perceptual" (CRF 17, one keyframe per loop) or "lossless" (about 6x the bytes; the wrap
    # and the still picture change by nothing at all)
    mp4_quality: str = "perceptual"


@dataclass
class Job:
    """Everything one photo's run needs besides the photo itself."""

    motion: MotionSpec = field(default_factory=MotionSpec)
    loop: LoopSpec = field(default_factory=LoopSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    max_size: int | None = None  # downscale the photo (long side); None: keep its size
    device: str = "auto"  # auto | cpu | cuda: the model's provider and the splatting engine

    def validate(self) -> Job:
        """Check every setting; raise InputError with one line naming the first bad one. Returns self."""
        m = self.motion
        if m.source not in MOTION_SOURCES:
            raise InputError(f"motion source must be one of {', '.join(MOTION_SOURCES)}, got {_short(m.source)}")
        PARAMS["feather_px"].check("feather_px", m.feather_px)
        self.loop.validate()
        if self.output.fmt not in FORMATS:
            raise InputError(f"format must be one of {', '.join(FORMATS)}, got {_short(self.output.fmt)}")
        if self.output.mp4_quality not in MP4_QUALITIES:
            raise InputError(f"mp4 quality must be one of {', '.join(MP4_QUALITIES)}, got {_short(self.output.mp4_quality)}")
        if self.device not in DEVICES:
            raise InputError(f"device must be one of {', '.join(DEVICES)}, got {_short(self.device)}")
        if self.max_size is not None:
            PARAMS["max_size"].check("max_size", self.max_size)
            if self.max_size < 2:
                raise InputError(f"max_size must be at least 2, got {self.max_size}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """The inverse of `to_dict`; unknown keys are refused (a journal from another version says so)."""
        parts = {"motion": MotionSpec, "loop": LoopSpec, "output": OutputSpec}
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise InputError(f"unknown job setting {key!r}")
            if key in parts:
                names = {f.name for f in fields(parts[key])}
                bad = set(value) - names
                if bad:
                    raise InputError(f"unknown {key} setting(s): {', '.join(sorted(bad))}")
                value = parts[key](**value)
            kwargs[key] = value
        return cls(**kwargs)

    def settings_key(self) -> dict[str, Any]:
        """What decides an item's outputs (the batch journal compares it on resume): the job without
        `overwrite` and the device (they change nothing in the result)."""
        d = self.to_dict()
        d["output"].pop("overwrite")
        d.pop("device")
        return d


MANIFEST = "stillflow.json"  # a batch item's record of what made its folder, beside its outputs


def output_names(stem: str) -> dict[str, str]:
    """The one naming of a photo's outputs, for both faces: kind -> file or folder name."""
    return {
        "mp4": f"{stem}_loop.mp4",
        "blend": f"{stem}.blend",
        "png": f"{stem}_frames",
        "exr": f"{stem}_exr",
        "gif": f"{stem}_loop.gif",
        "webp": f"{stem}_loop.webp",
    }


def frame_name(index: int, ext: str) -> str:
    return f"frame_{index:04d}{ext}"
