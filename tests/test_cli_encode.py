"""operators/encode.py with the real bpy module: MP4 through Blender's FFmpeg, image strips, .blend files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

bpy = pytest.importorskip("bpy")
cv2 = pytest.importorskip("cv2")

from stillflow.core.errors import InputError  # noqa: E402
from stillflow.operators import encode  # noqa: E402

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parents[1]


def _frames(folder, n=6, size=(96, 54)):
    w, h = size
    paths = []
    for i in range(n):
        a = np.zeros((h, w, 3), np.uint8)
        a[..., 0] = 40 + 20 * i
        a[: h // 2, :, 1] = 200
        a[:, (i * 8) % w : (i * 8) % w + 8, 2] = 255
        p = folder / f"frame_{i:04d}.png"
        Image.fromarray(a).save(p)
        paths.append(p)
    return paths


def _read_movie(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


@pytest.mark.parametrize("size", [(96, 54), (95, 53)])
def test_write_mp4_roundtrip(tmp_path, size):
    paths = _frames(tmp_path, 6, size)
    out = tmp_path / "out" / "loop.mp4"
    out.parent.mkdir()
    assert encode.write_mp4(paths, out, fps=30) == out.absolute()
    data = out.read_bytes()
    assert data[4:8] == b"ftyp"
    assert 500 < len(data) < 200_000
    frames, fps = _read_movie(out)
    assert len(frames) == 6
    assert fps == pytest.approx(30, abs=0.01)
    w, h = size
    assert frames[0].shape == (h - h % 2, w - w % 2, 3)
    if size == (96, 54):  # same size: the colours survive H.264 closely
        ref = np.asarray(Image.open(paths[3])).astype(float)
        assert np.abs(frames[3].astype(float) - ref).mean() < 12
    # nothing else left behind, the caller's data untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["loop.mp4"]
    assert "stillflow_encode" not in bpy.data.scenes


def test_write_mp4_fractional_fps(tmp_path):
    paths = _frames(tmp_path, 4)
    out = encode.write_mp4(paths, tmp_path / "a.mp4", fps=23.976)
    _, fps = _read_movie(out)
    assert fps == pytest.approx(23.976, abs=0.01)


def test_add_image_strip(tmp_path):
    paths = _frames(tmp_path, 5)
    scene = bpy.data.scenes.new("strip_test")
    try:
        s1 = encode.add_image_strip(scene, paths)
        assert s1.channel == 1 and s1.frame_final_start == scene.frame_start
        assert s1.frame_final_duration == 5 and len(s1.elements) == 5
        assert [e.filename for e in s1.elements] == [p.name for p in paths]
        s2 = encode.add_image_strip(scene, paths[:3], frame_start=10)
        assert s2.channel == 2 and s2.frame_final_start == 10 and s2.frame_final_duration == 3
        s3 = encode.add_image_strip(scene, paths, channel=7)
        assert s3.channel == 7
    finally:
        bpy.data.scenes.remove(scene)


def test_add_image_strip_rejects_two_folders(tmp_path):
    a = _frames(tmp_path, 2)
    (tmp_path / "b").mkdir()
    b = _frames(tmp_path / "b", 2)
    scene = bpy.data.scenes.new("strip_test2")
    try:
        with pytest.raises(InputError, match="one folder"):  # typed: one line, no traceback
            encode.add_image_strip(scene, a + b)
    finally:
        bpy.data.scenes.remove(scene)


def test_write_blend_with_frames_and_field(tmp_path):
    """The .blend holds the photo, the field image (R = dx, G = -dy, packed) and an image strip."""
    pytest.importorskip("stillflow.core.field")
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    paths = _frames(frames_dir, 5, (96, 54))
    photo = tmp_path / "photo.png"
    Image.open(paths[0]).save(photo)
    field = np.zeros((54, 96, 2), np.float32)
    field[..., 0] = 1.5  # right
    field[..., 1] = 2.0  # down in files: up is +G in Blender
    field[0, :, 0] = -3.0  # top row, to check the row order
    out = tmp_path / "scene.blend"
    assert encode.write_blend(out, photo, field, paths, fps=25) == out.absolute()
    assert out.read_bytes()[:7] == b"BLENDER" or out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "photo.png", "scene.blend"]

    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end, scene.render.fps) == (1, 5, 25)
    strips = list(scene.sequence_editor.strips_all)
    assert len(strips) == 1 and strips[0].type == "IMAGE" and len(strips[0].elements) == 5
    assert strips[0].directory == "//frames/"
    img = bpy.data.images["photo.png_motion"]
    assert tuple(img.size) == (96, 54) and img.is_float and img.packed_file is not None
    px = np.empty(96 * 54 * 4, np.float32)
    img.pixels.foreach_get(px)
    px = px.reshape(54, 96, 4)  # Blender: bottom row first
    assert np.allclose(px[:-1, :, 0], 1.5) and np.allclose(px[..., 1], -2.0)
    assert np.allclose(px[-1, :, 0], -3.0)  # the file's top row is Blender's last row
    assert bpy.data.images["photo.png"].filepath == str(photo.absolute())
    bpy.ops.wm.read_homefile(use_empty=True)


def test_written_blend_opens_with_the_extension_settings(tmp_path, blender):
    """scene.stillflow shows the photo, the field image, frames and fps: for a file written inside Blender
    with the extension enabled, and for one written by the command line (no extension registered)."""
    import subprocess
    import sys

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    paths = _frames(frames_dir, 3, (64, 36))
    photo = tmp_path / "falls.png"
    Image.open(paths[0]).save(photo)
    inside = encode.write_blend(tmp_path / "inside.blend", photo, np.zeros((36, 64, 2), np.float32), paths, 12)
    code = (
        "import sys, numpy as np; from pathlib import Path; from stillflow.operators import encode\n"
        "d = Path(sys.argv[1]); paths = sorted((d / 'frames').glob('*.png'))\n"
        "encode.write_blend(d / 'cli.blend', d / 'falls.png', np.zeros((36, 64, 2), np.float32), paths, 12)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for blend in (inside, tmp_path / "cli.blend"):
        blender.ops.wm.open_mainfile(filepath=str(blend))
        s = blender.context.scene.stillflow
        assert s.image is not None and s.image.name == "falls.png", blend
        assert s.field_image.name == "falls.png_motion"
        assert (s.frames, s.fps) == (3, 12.0)
    blender.ops.wm.read_homefile(use_empty=True)


def test_mp4_sink_hands_each_frame_to_x264_as_it_comes(tmp_path):
    """Where PyAV has libx264 (core.video), the MP4 sink encodes each frame as it is written, with no hidden
    frame files in its folder at any time, and the movie is the very file `write_mp4` makes from the same
    frames saved as PNG (x264 is deterministic): the streaming changes when encoding happens, not what; so is
    the movie of a sink that takes its 8-bit frames from a PNG sink beside it. A real photo (the sample's
    crop, CC0) in a real loop, 12 frames."""
    pytest.importorskip("av")
    from stillflow.core.imageio import load_image
    from stillflow.core.job import LoopSpec
    from stillflow.core.render import render_loop
    from stillflow.core.sinks import FramesSink
    from stillflow.core.video import x264
    from stillflow.operators.bpy_sinks import Mp4Sink

    assert x264() is not None, "PyAV is installed but has no libx264"
    img = load_image(REPO / "tests" / "data" / "mcway_crop.jpg").rgb  # 128 x 72
    h, w = img.shape[:2]
    motion = np.zeros((h, w, 2), np.float32)
    motion[20:60, 30:100, 1] = 0.8
    loop = LoopSpec(frames=12)
    streamed, pngs = tmp_path / "streamed", tmp_path / "png"
    streamed.mkdir(), pngs.mkdir()
    sink, frames = Mp4Sink("s"), FramesSink("s", "png")
    beside = Mp4Sink("b", frames_from=frames)  # as the Blender panel pairs them: it takes the PNG sink's frames
    sink.open(streamed, w, h, loop)
    frames.open(pngs, w, h, loop)
    beside.open(pngs, w, h, loop)
    for frame in render_loop(img, motion, loop, device="cpu"):
        sink.write(frame.index, frame.rgb)
        frames.write(frame.index, frame.rgb)
        beside.write(frame.index, frame.rgb)
        assert {p.name for p in streamed.iterdir()} <= {"s_loop.mp4"}  # no frame files beside it
    sink.close()
    frames.close()
    beside.close()
    movie = streamed / "s_loop.mp4"
    from_files = encode.write_mp4(frames.paths, tmp_path / "files.mp4", loop.fps)
    assert movie.read_bytes() == from_files.read_bytes() == (pngs / "b_loop.mp4").read_bytes()
    decoded, fps = _read_movie(movie)
    assert len(decoded) == 12 and fps == pytest.approx(loop.fps, abs=0.01)
    ref = np.asarray(Image.open(frames.paths[5])).astype(float)
    assert np.abs(decoded[5].astype(float) - ref).mean() < 3
