"""Median filters of flow fields `(N, H, W)` in torch: by sorting unfolded windows, or by a sorting network
(comparisons only, the form `torch.compile` fuses into one kernel); TV-L1 median-filters its flow each warp."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def median_filter(u: torch.Tensor, size: int) -> torch.Tensor:
    """`size`×`size` median of `(N, H, W)` with replicated borders (cv2.medianBlur on float)."""
    return median_of_patches(replicate_pad(u, size // 2), size)


def replicate_pad(u: torch.Tensor, pad: int) -> torch.Tensor:
    """`(N, H, W)` → `(N, H + 2·pad, W + 2·pad)`, borders replicated."""
    return F.pad(u[:, None], (pad, pad, pad, pad), mode="replicate")[:, 0]


def median_of_patches(padded: torch.Tensor, size: int) -> torch.Tensor:
    """Median of each `size`×`size` window of `padded` `(N, H + size − 1, W + size − 1)` → `(N, H, W)`."""
    patches = padded.unfold(1, size, 1).unfold(2, size, 1)  # (N, H, W, size, size)
    return patches.reshape(*patches.shape[:3], -1).median(dim=-1).values


def median_network(count: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """Comparators that leave the median of `count` (odd) values on wire `count // 2`.

    Batcher's odd-even merge sort of `count` values (padded with +∞ to a power of two: comparators
    that touch padding never move anything), keeping only the comparators the middle wire depends
    on. Each is `(i, j, min_needed, max_needed)` with i < j: wire i gets the min, wire j the max.
    25 values (the 5×5 median) take 113 comparators.
    """
    if count < 1 or count % 2 == 0:
        raise ValueError(f"count must be odd and positive, got {count}")
    n = 1 << (count - 1).bit_length()
    comparators = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        comparators.append((i + j, i + j + k))
            k //= 2
        p *= 2
    needed, kept = {count // 2}, []
    for i, j in reversed([(i, j) for i, j in comparators if j < count]):
        if i in needed or j in needed:
            kept.append((i, j, i in needed, j in needed))
            needed |= {i, j}
    return tuple(reversed(kept))


def median_of_windows(padded: torch.Tensor, size: int) -> torch.Tensor:
    """`median_of_patches` as `median_network` over `size`² shifted views, by comparisons only.

    Slower eagerly, but under `torch.compile` one kernel that reads each neighbourhood once, where
    the median of unfolded patches copies it `size`² times. (A comparison and two selects, rather
    than minimum/maximum, whose NaN handling keeps the compiled CPU loop from vectorising well.)
    """
    h, w = padded.shape[1] - size + 1, padded.shape[2] - size + 1
    wires = [padded[:, dy : dy + h, dx : dx + w] for dy in range(size) for dx in range(size)]
    for i, j, min_needed, max_needed in median_network(size * size):
        less = wires[i] < wires[j]
        low = torch.where(less, wires[i], wires[j]) if min_needed else wires[i]
        high = torch.where(less, wires[j], wires[i]) if max_needed else wires[j]
        wires[i], wires[j] = low, high
    return wires[size * size // 2]


def median_filter_network(u: torch.Tensor, size: int) -> torch.Tensor:
    """`median_filter` computed by `median_network` (equal results; the form `torch.compile` fuses)."""
    return median_of_windows(replicate_pad(u, size // 2), size)


def masked_median(padded: torch.Tensor, u: torch.Tensor, mask: torch.Tensor, size: int) -> torch.Tensor:
    """Median of `u` `(N, H, W)` (given replicate-padded) where `mask` `(N, 1, 1)`, `u` elsewhere."""
    return torch.where(mask, median_of_patches(padded, size), u)


def masked_median_network(padded: torch.Tensor, u: torch.Tensor, mask: torch.Tensor, size: int) -> torch.Tensor:
    """`masked_median` by `median_network`."""
    return torch.where(mask, median_of_windows(padded, size), u)
