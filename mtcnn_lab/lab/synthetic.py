"""A synthetic corpus for the reliability checks: short videos of a sample face, some of them corrupt."""

from __future__ import annotations

from pathlib import Path

from mtcnn_lab.io.paths import PathLike


def make_synthetic_corpus(folder: PathLike, n_videos: int = 20, n_frames: int = 6, n_corrupt: int = 2,
                          size: tuple[int, int] = (160, 120)) -> list[Path]:
    """Write ``n_videos`` short MJPG ``.avi`` clips of a moving face (matplotlib's Grace Hopper
    sample) plus ``n_corrupt`` corrupt videos (random bytes, a text file) into ``folder``; return
    the paths, corrupt ones last."""
    import cv2
    import matplotlib.cbook
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    face = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    fh = int(height * 0.75)
    face = cv2.resize(face, (int(fh * 0.85), fh))
    rng = np.random.default_rng(0)
    paths = []
    for v in range(n_videos):
        path = folder / f"clip{v:03d}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
        for k in range(n_frames):
            frame = np.full((height, width, 3), 30 + 5 * v % 200, np.uint8)
            x = min(width - face.shape[1], (3 * v + 4 * k) % max(1, width - face.shape[1]))
            y = (height - fh) // 2
            frame[y:y + fh, x:x + face.shape[1]] = face
            writer.write(frame)
        writer.release()
        paths.append(path)
    for c in range(n_corrupt):
        path = folder / (f"corrupt{c:02d}.avi" if c % 2 == 0 else f"corrupt{c:02d}.mp4")
        path.write_bytes(rng.integers(0, 256, 4096 + c, dtype=np.uint8).tobytes() if c % 2 == 0
                         else b"this is not a video\n" * 50)
        paths.append(path)
    return paths
