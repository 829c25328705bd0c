"""H.264 MP4 through x264 (PyAV's FFmpeg build), written frame by frame as the renderer makes them.

PyAV (BSD; its wheel bundles FFmpeg with libx264, GPL, as Stillflow is) is optional: `x264()` is None where
it is not installed, and the callers (`operators.encode.write_mp4`, `operators.bpy_sinks.Mp4Sink`) then
encode through Blender's own FFmpeg. The encoding is x264's; only the choice of options is ours:

- one GOP for the whole loop, no B-frames, no scene cuts: the still picture is not re-grained at keyframes;
- x264's macroblock tree and adaptive quantiser off (`X264_OPTIONS`): the macroblock tree spends bits on
  what later frames refer to, so over one GOP it gives the keyframe the most and the last frames the fewest
  and the wrap (frame N-1 -> frame 0) jumps; the adaptive quantiser re-grains the still picture a little at
  some frames. Blender exposes neither option.
- the keyframe coded finer than the P-frames (ipratio 6, x264's default 1.4): the P-frames then copy its
  still picture rather than refine it bit by bit over the loop, which the wrap back to the keyframe undid
  at once (the still picture's step there), and their motion lags it less at the wrap;
- a smaller deadzone (8 for inter blocks, x264's default 21): small changes of a moving texture are coded
  as they come, not held back until they pile up into a step, least of all at the wrap;
- no deblocking filter: it smooths across block edges, so where a block of moving water borders one of
  still land the still block's edge pixels change with every frame (the still picture's steps left were
  there); at CRF 17 the blocks it would hide are not seen (a decoded frame's error is the same).
- BT.709, limited range, tagged as Blender's FFmpeg tags it (the same decoded pixels as Blender's files).

`X264Writer` encodes on a thread of its own, up to `AHEAD` frames behind its caller: PyAV releases the GIL
while swscale converts a frame and x264 encodes it, so encoding overlaps the next frame's rendering.
"""

from __future__ import annotations

import errno
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import OutputError, write_error
from .sinks import Behind

# Measured with `stillflow inspect` on the sample's default loop (60 frames, 1280x720): wrap step / median,
# the moving region's largest step / median, the still region's largest mean step, size:
#   Blender's FFmpeg (CRF 17, one GOP)          1.76  1.64  0.090/255  1.0 MB
#   x264, mbtree=0                              1.39  1.28  0.085/255  1.7 MB
#   x264, mbtree=0:aq-mode=0                    1.41  1.37  0.033/255  1.5 MB
# At 480 px and 36 frames: Blender 2.68, 2.54, 0.100/255; mbtree=0:aq-mode=0 1.90, 1.77, 0.079/255.
# (Contrast-boosted crops of a clear sky showed no more banding with aq-mode=0.)
# The keyframe finer (2026-12-02, the sample's loop of today's renderer, inspect_loop's figures with the
# hints' mask, x264's default ipratio 1.4 -> 3.0): at 1280x720, 60 frames: 1.40 -> 1.30, 1.35 -> 1.29,
# 0.054 -> 0.012/255, 1.71 -> 1.87 MB; at 480 px, 36 frames: 1.82 -> 1.49, 1.60 -> 1.46, 0.148 -> 0.028/255,
# 0.18 -> 0.21 MB; the island photo at 480 px: 1.57 -> 1.52, 1.55 -> 1.51, 0.166 -> 0.129/255 (its still
# steps left are on the island's outline, in blocks that hold moving sea and sky too). ipratio 2.0 and 2.5
# gave less, 4.0 the same as 3.0; a finer zone for the last frames re-grained the still picture at the wrap.
# A smaller deadzone and a finer keyframe still (2026-12-03, ipratio 3.0 -> 5.0, x264's deadzone-inter 21 ->
# 11; `stillflow animate --max-size 960` of 12 real photos of models/realset with their hints and the
# sample's default loop, PNG frames encoded both ways, then `stillflow inspect --mask HINTS`): the moving
# region's largest step / median fell on 12 of 13 (Colosseum 1.61 -> 1.50, Sherburne 1.51 -> 1.48, steam
# 1.32 -> 1.26, McWay 1.28 -> 1.24, Singapore 1.72 -> 1.66, the sample 1.33 -> 1.30; CoastCam c1 rose,
# 1.077 -> 1.082), the still region's largest step fell on 12 and held on one (the island 0.142 -> 0.133/255,
# the canal 0.027), for 5-17 % more bytes (steam 30 %). The wrap's excess is coding noise that
# the keyframe and the last P-frame do not share: CRF 16 spends as many bytes for less (Colosseum 1.71).
# No deblocking (2026-12-04; with it ipratio 5.0 -> 6.0, deadzone-inter 11 -> 8; the same 9 loops of today's
# renderer, `stillflow animate --max-size 960` with their hints, the sample's 960 px too): the still region's
# largest step fell on 8 and held on one (the island 0.130 -> 0.097/255, the cove 0.060 -> 0.045, Sherburne
# 0.050 -> 0.043, Singapore 0.154 -> 0.141; the Colosseum 0.009), the moving region's largest step / median
# fell on 7 (Colosseum 1.513 -> 1.479, Sherburne 1.469 -> 1.455, Singapore 1.642 -> 1.622) and rose on 2 by
# at most 0.007 (steam 1.260 -> 1.267, the aerial surf 1.345 -> 1.350), for 3-6 % more bytes (steam 11 %); the decoded frames' mean error against the
# PNG frames was the same (island frame 30: 2.058 and 2.056/255) and crops showed no blocks. No deblocking
# alone took the island to 0.100, deblock -2:-2 to 0.102; deadzone-inter 8 and ipratio 6 each took the
# Colosseum under 1.5 (1.488, 1.486).
X264_OPTIONS = {"crf": "17", "preset": "medium", "bf": "0",
                "x264-params": "mbtree=0:aq-mode=0:scenecut=0:ipratio=6.0:deadzone-inter=8:deadzone-intra=11:"
                               "no-deblock=1"}


def x264():
    """PyAV, when it is installed and has libx264; else None."""
    try:
        import av
    except ImportError:
        return None
    return av if "libx264" in av.codecs_available else None


def even_size(width: int, height: int) -> tuple[int, int]:
    """H.264 in 4:2:0 needs even sizes: an odd one loses its last row or column (Blender's sequencer
    scales the strip to fit the at most 1 px smaller frame)."""
    return max(2, width - width % 2), max(2, height - height % 2)


class X264Writer:
    """An MP4 at ``path`` of ``width`` x ``height`` (even) frames at ``fps``, one keyframe every ``gop``
    frames. `write(rgb)` takes 8-bit sRGB (H, W, 3) frames at least that large (cropped to it); `close()`
    finishes the file (and raises the first failure); `abort()` stops without finishing it."""

    AHEAD = 2  # frames handed to the encoding thread and not yet encoded, at most

    def __init__(self, av, path: Path, width: int, height: int, fps: float, gop: int):
        self.av = av
        self.path = Path(path)
        self.width, self.height = even_size(width, height)
        self._thread: Behind | None = None
        self._movie = None
        try:
            self._movie = av.open(str(self.path), "w", format="mp4")
            stream = self._movie.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            cc = stream.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = 1  # BT.709
            cc.color_range = 1  # limited ("MPEG")
            stream.options = {**X264_OPTIONS, "g": str(max(1, int(gop)))}
        except (OSError, av.FFmpegError) as err:
            self.abort()
            raise self._error(err) from None
        self._stream = stream
        self._thread = Behind("stillflow-x264", self.AHEAD)

    def _error(self, err: Exception) -> OutputError:
        if getattr(err, "errno", None) == errno.ENOSPC:
            return write_error(self.path.name, err)  # "the disk is full: ..."
        return OutputError(f"{self.path.name} could not be encoded ({err}): is the disk full?")

    def write(self, rgb: np.ndarray, copy: bool = True) -> None:
        """One frame (uint8 (H, W, 3)). It is encoded later, on the thread: ``copy`` (the default) takes a
        copy, so the caller may reuse its buffer; ``copy=False`` for an array nobody writes to again."""
        frame = rgb[: self.height, : self.width]
        frame = np.array(frame, order="C") if copy else np.ascontiguousarray(frame)
        self._thread.submit(self._encode, frame)  # a failed encode raises its OutputError here

    def _encode(self, rgb: np.ndarray | None) -> None:
        av = self.av
        try:
            if rgb is None:
                packets = self._stream.encode()  # flush
            else:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                    format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
                packets = self._stream.encode(frame)
            for packet in packets:
                self._movie.mux(packet)
        except (OSError, av.FFmpegError) as err:
            raise self._error(err) from None

    def close(self) -> None:
        """Every frame encoded, the encoder flushed and the file's index written (or the first failure
        raised, the file left unfinished for the caller to remove)."""
        try:
            self._thread.submit(self._encode, None)  # the flush, after every frame
            self._thread.finish()
            self._stop()
            movie, self._movie = self._movie, None
            movie.close()
        except (OSError, self.av.FFmpegError) as err:
            self.abort()
            raise self._error(err) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop without finishing the file (the caller removes it)."""
        self._stop()
        movie, self._movie = self._movie, None
        if movie is not None:
            try:
                movie.close()
            except Exception:  # noqa: BLE001 - a movie cut short may fail to close; it is thrown away
                pass

    def _stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None


def encode_files(av, paths: list[Path], out: Path, fps: float, gop: int) -> None:
    """An MP4 at ``out`` of 8-bit image files ``paths`` (in order), through `X264Writer`."""
    from .imageio import pil

    Image = pil()
    writer = None
    try:
        for path in paths:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            if writer is None:
                writer = X264Writer(av, out, rgb.shape[1], rgb.shape[0], fps, gop)
            writer.write(rgb, copy=False)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
