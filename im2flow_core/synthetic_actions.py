"""Procedurally generated action clips for the built-in demo dataset, deterministic by seed.

Textured figures on textured backgrounds perform actions whose motion differs in direction, speed,
rotation and oscillation. Each action leaves a cue to its motion in a single frame (a fish faces
where it swims, a runner leans forward, a pinwheel's blades curve against its spin, a bouncing
ball squashes near the floor), and pairs of actions look alike in one frame but move differently
(walk vs run: the same figure, a slight lean, 3× the speed; spin_cw vs spin_ccw: mirror-image
pinwheels turning opposite ways). A ball in flight has no front to face: its pose alone cannot say
which way it goes, so it leaves a motion trail (faint copies of the figure where it was a fraction
of a frame earlier, as a camera's exposure smears a fast object), which shows where it moves and how
fast, and nothing where it hangs still. Figures have a dark rim, as shading outlines solid objects,
so they stand out on any background, and each action happens in its kind of place (`PLACES`).

Two kinds of pair, as in real action datasets: three pairs share a place and differ only in motion
(swimming left or right, walking or running, spinning either way: the scene tells which pair, the
motion cue which of the two), and one pair moves alike and differs only in where and with what
(`bounce`, a ball dribbled on a court, and `juggle`, a ball kept up in a gym: UCF-101's Basketball
and SoccerJuggling): there only the appearance tells them apart, and a still frame's hallucinated
motion cannot. So each stream of a two-stream recogniser knows something the other does not. The
cues are sized to survive the demo's 64 px frames (a walker's nose and forward arm; a runner's
stronger lean, wider stride and pumping arms). All clips are `(T, H, W, 3) uint8` RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ACTIONS = ("swim_left", "swim_right", "walk", "run", "spin_cw", "spin_ccw", "juggle", "bounce")
_SPRITE = 48  # sprite canvas side at output scale, px
_SUPERSAMPLE = 4  # sprites are drawn this much larger and shrunk, for anti-aliased edges
BALLS = ("juggle", "bounce")
"""The two ball actions: one figure, one motion, told apart only by their place."""
TRAILING = BALLS
"""Actions whose figure (a ball) has no front: they show their motion by a trail instead."""
_TRAIL = ((0.7, 0.3), (0.35, 0.55))  # (how many frames earlier, opacity) of each faint copy, oldest first


@dataclass(frozen=True)
class Pose:
    """Where the sprite's centre goes in a frame, its rotation (degrees, clockwise on screen) and scale."""

    x: float
    y: float
    angle: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def make_texture(rng: np.random.Generator, size: int, palette: np.ndarray | None = None) -> np.ndarray:
    """A colourful, multi-scale random texture `(size, size, 3) uint8` around an RGB `palette` mean."""
    field = np.zeros((size, size, 3), np.float32)
    for cells, weight in ((4, 1.0), (12, 0.6), (size // 3, 0.35)):
        for c in range(3):
            field[..., c] += weight * _smooth_noise(rng, size, max(cells, 2))
    field += 0.25 * rng.standard_normal(field.shape).astype(np.float32)  # fine grain
    palette = rng.uniform(40, 215, size=3) if palette is None else palette
    contrast = rng.uniform(25, 45)
    return np.clip(palette + contrast * field, 0, 255).astype(np.uint8)


def _blank(scale: int = _SUPERSAMPLE) -> np.ndarray:
    return np.zeros((_SPRITE * scale, _SPRITE * scale), np.uint8)


def _pts(points: list[tuple[float, float]], scale: int = _SUPERSAMPLE) -> np.ndarray:
    centre = _SPRITE / 2
    return np.array([[(centre + x) * scale, (centre + y) * scale] for x, y in points], np.int32)


def _shape_mask(action: str) -> np.ndarray:
    """The figure's silhouette for `action`, facing right, `(S, S) float32` in [0, 1]."""
    s, m = _SUPERSAMPLE, _blank()
    aa = cv2.LINE_AA
    if action in ("swim_left", "swim_right"):  # a fish facing +x: body, tail, fins
        cv2.ellipse(m, (24 * s, 24 * s), (15 * s, 8 * s), 0, 0, 360, 255, -1, aa)
        cv2.fillPoly(m, [_pts([(-12, 0), (-21, -8), (-21, 8)])], 255, aa)
        cv2.fillPoly(m, [_pts([(4, -6), (-4, -13), (-6, -6)])], 255, aa)
        cv2.circle(m, (33 * s, 21 * s), 2 * s, 0, -1, aa)  # the eye: a hole, so it shows the background
    elif action in ("walk", "run"):  # an upright figure facing +x (nose), two legs
        spread = 12 if action == "run" else 4  # a runner's stride is wider
        cv2.circle(m, (24 * s, 8 * s), 5 * s, 255, -1, aa)
        cv2.fillPoly(m, [_pts([(3, -19), (10, -16), (3, -12)])], 255, aa)  # a nose big enough to see at 64 px
        cv2.ellipse(m, (24 * s, 21 * s), (5 * s, 9 * s), 0, 0, 360, 255, -1, aa)
        if action == "run":  # arms pumping: one thrown forward and up, one back
            cv2.line(m, (25 * s, 16 * s), (36 * s, 11 * s), 255, 2 * s, aa)
            cv2.line(m, (23 * s, 16 * s), (12 * s, 22 * s), 255, 2 * s, aa)
        else:  # an arm swinging gently forward
            cv2.line(m, (25 * s, 16 * s), (34 * s, 22 * s), 255, 2 * s, aa)
        for dx in (-spread, spread):
            cv2.line(m, (24 * s, 28 * s), ((24 + dx) * s, 44 * s), 255, 3 * s, aa)
    elif action in ("spin_cw", "spin_ccw"):  # a pinwheel whose curved blades trail its spin
        sign = 1 if action == "spin_cw" else -1
        cv2.circle(m, (24 * s, 24 * s), 4 * s, 255, -1, aa)
        for k in range(4):
            base = k * math.pi / 2
            outline = [(r * math.cos(base - sign * 0.045 * r), r * math.sin(base - sign * 0.045 * r))
                       for r in range(3, 21)]
            back = [(r * math.cos(base - sign * 0.045 * r + 0.45), r * math.sin(base - sign * 0.045 * r + 0.45))
                    for r in range(20, 2, -1)]
            cv2.fillPoly(m, [_pts(outline + back)], 255, aa)
    elif action in BALLS:
        cv2.circle(m, (24 * s, 24 * s), 11 * s, 255, -1, aa)
    else:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return cv2.resize(m, (_SPRITE, _SPRITE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _trajectory(action: str, rng: np.random.Generator, n_frames: int, size: int, lag: float = 0.0) -> list[Pose]:
    """Per-frame poses of the figure for `action`, randomised within the action's style; `lag` > 0:
    where it was that many frames before each frame (the same draws of `rng`, earlier times)."""
    t = np.arange(n_frames, dtype=np.float64) - lag
    mid = size / 2
    if action in ("swim_left", "swim_right"):
        speed = rng.uniform(1.6, 2.4)
        direction = 1 if action == "swim_right" else -1
        x0 = mid - direction * speed * (n_frames - 1) / 2 + rng.uniform(-4, 4)
        y0, phase = rng.uniform(mid - 12, mid + 12), rng.uniform(0, 2 * math.pi)
        return [Pose(x0 + direction * speed * k, y0 + 2.0 * math.sin(0.5 * k + phase), 0.0,
                     direction * 1.0) for k in t]
    if action in ("walk", "run"):
        speed = rng.uniform(0.8, 1.2) * (3.0 if action == "run" else 1.0)
        direction = 1 if rng.random() < 0.5 else -1
        lean = 22.0 if action == "run" else 6.0  # walkers lean into their step a little, runners much more
        x0 = mid - direction * speed * (n_frames - 1) / 2
        y0 = rng.uniform(mid - 6, mid + 6)
        bob = 1.5 if action == "run" else 0.8
        return [Pose(x0 + direction * speed * k, y0 - bob * abs(math.sin(0.6 * k)), direction * lean,
                     direction * 1.0) for k in t]
    if action in ("spin_cw", "spin_ccw"):
        rate = rng.uniform(7, 11) * (1 if action == "spin_cw" else -1)
        start = rng.uniform(0, 90)
        x0, y0 = mid + rng.uniform(-10, 10), mid + rng.uniform(-10, 10)
        return [Pose(x0, y0, start + rate * k) for k in t]
    if action in BALLS:  # alike: only the place tells them apart
        height, omega, phase = rng.uniform(22, 32), rng.uniform(0.3, 0.42), rng.uniform(0, math.pi)
        floor, x0, drift = mid + 22, mid + rng.uniform(-12, 12), rng.uniform(-0.4, 0.4)
        poses = []
        for k in t:
            h = height * abs(math.sin(omega * k + phase))
            squash = 1.0 - 0.35 * max(0.0, 1 - h / 6)  # flattened near the floor
            poses.append(Pose(x0 + drift * k, floor - 11 * squash - h, 0.0, 2 - squash, squash))
        return poses
    raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")


def _pose_matrix(pose: Pose, figure_scale: float = 1.0) -> np.ndarray:
    """2×3 affine map from sprite pixels to frame pixels for `pose`, the figure enlarged `figure_scale`×."""
    c = _SPRITE / 2
    rad = math.radians(pose.angle)
    rotation = np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    linear = rotation @ np.diag([pose.scale_x, pose.scale_y]) * figure_scale
    offset = np.array([pose.x, pose.y]) - linear @ np.array([c, c])
    return np.hstack([linear, offset[:, None]]).astype(np.float64)


@dataclass(frozen=True)
class SceneStyle:
    """What clips of one group (one "recording") share: the background and the figure's texture."""

    background: np.ndarray
    figure_texture: np.ndarray


PLACES: dict[str, tuple[float, float, float]] = {
    "swim_left": (40, 105, 175), "swim_right": (40, 105, 175),  # water
    "walk": (150, 140, 115), "run": (150, 140, 115),  # a street
    "spin_cw": (70, 150, 70), "spin_ccw": (70, 150, 70),  # a garden
    "juggle": (165, 110, 185),  # a gym
    "bounce": (205, 125, 50),  # a court
}
"""Mean RGB of the places each action happens in. Actions happen in their kind of place, as real ones
do (swimmers in water): the scene tells an action's kind, not its direction, since the two actions
of a motion pair share a place (left and right swimmers alike); only the motion tells those apart.
The two ball actions move alike and differ in place (and so in the ball's colour, which opposes
its background's): only the appearance tells those apart."""


def make_scene_style(seed: int, size: int, place: tuple[float, float, float] | None = None) -> SceneStyle:
    """Background `(size, size, 3)` and figure texture `(S, S, 3)` uint8 for one group, by seed.

    `place`: the background's mean RGB before a random shift of up to ±30 per channel (one of
    `PLACES`); None: any colour.
    """
    rng = np.random.default_rng(seed)
    palette = None if place is None else np.clip(np.asarray(place) + rng.uniform(-30, 30, size=3), 30, 225)
    background = make_texture(rng, size, palette)
    # Dim the background a little so figures stand out, as foreground objects usually do.
    background = (background.astype(np.float32) * 0.8).astype(np.uint8)
    # The figure's colours oppose the background's, so it stays visible, as foreground usually is.
    opposite = np.clip(255 - background.reshape(-1, 3).mean(axis=0) + rng.uniform(-20, 20, size=3), 30, 225)
    return SceneStyle(background, make_texture(rng, _SPRITE, opposite))


def render_clip(action: str, seed: int, style: SceneStyle, n_frames: int = 20, noise_sigma: float = 2.0,
                figure_scale: float = 1.0) -> np.ndarray:
    """Render one clip of `action`: `(n_frames, H, W, 3) uint8` RGB, H = W = the style's size.

    `figure_scale` enlarges the figure (1.0: about 30 px long on a 96 px frame).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    size = style.background.shape[0]
    mask = _shape_mask(action)
    # A dark rim along the silhouette, as shading outlines solid objects: the figure stands out from any background.
    rim = mask - cv2.erode(mask, np.ones((3, 3), np.uint8))
    sprite = np.concatenate([style.figure_texture.astype(np.float32) * (1 - 0.6 * rim[..., None]), mask[..., None]],
                            axis=-1)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    # Each pose sequence redraws the same trajectory parameters from `seed`; the noise draws follow.
    trails = [(_trajectory(action, np.random.default_rng(seed), n_frames, size, lag), opacity)
              for lag, opacity in (_TRAIL if action in TRAILING else ())]
    rng = np.random.default_rng(seed)
    poses = _trajectory(action, rng, n_frames, size)
    for k, pose in enumerate(poses):
        frame = style.background.astype(np.float32)
        for trail_pose, opacity in [(trail[k], opacity) for trail, opacity in trails] + [(pose, 1.0)]:
            warped = cv2.warpAffine(sprite, _pose_matrix(trail_pose, figure_scale), (size, size),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            alpha = opacity * warped[..., 3:4]
            frame = frame * (1 - alpha) + warped[..., :3] * alpha
        frame += noise_sigma * rng.standard_normal(frame.shape).astype(np.float32)  # sensor noise
        frames[k] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return frames
