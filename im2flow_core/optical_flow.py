"""Dense optical flow between two frames: TV-L1 (default), DIS and Farnebäck from OpenCV, and TV-L1
in PyTorch (`tvl1-torch`, batched, GPU or CPU: `im2flow_core.tvl1_torch`).

Every estimator takes two `(H, W) uint8` grayscale frames and returns flow `(H, W, 2) float32` in
pixels, u first, v pointing down, such that frame0[y, x] ≈ frame1[y + v, x + u].
Parameters are typed models whose defaults are OpenCV's own (checked by the tests), and
`resolved_params()` reports what the OpenCV object really uses, for provenance.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from im2flow_core.flow_params import (  # noqa: F401 - re-exported: the parameters belong with the estimators
    DISParams,
    FarnebackParams,
    FlowAlgorithm,
    TVL1Params,
)


class FlowEstimator(Protocol):
    """Computes flow between two grayscale frames."""

    def calc(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """Flow `(H, W, 2) float32` px from `frame0` to `frame1` (both `(H, W) uint8`)."""
        ...

    def resolved_params(self) -> dict[str, object]:
        """The parameters the OpenCV object actually runs with."""
        ...


def _check_pair(frame0: np.ndarray, frame1: np.ndarray) -> None:
    if frame0.shape != frame1.shape or frame0.ndim != 2 or frame0.dtype != np.uint8:
        raise ValueError(f"expected two equal (H, W) uint8 frames, got {frame0.shape} {frame0.dtype} "
                         f"and {frame1.shape} {frame1.dtype}")


class TVL1Estimator:
    """TV-L1 via `cv2.optflow.DualTVL1OpticalFlow_create`."""

    def __init__(self, params: TVL1Params | None = None) -> None:
        p = params or TVL1Params()
        self._impl = cv2.optflow.DualTVL1OpticalFlow_create(  # type: ignore[attr-defined]  # contrib: no stubs
            tau=p.tau, lambda_=p.lambda_, theta=p.theta, nscales=p.nscales, warps=p.warps,
            epsilon=p.epsilon, innnerIterations=p.inner_iterations, outerIterations=p.outer_iterations,
            scaleStep=p.scale_step, gamma=p.gamma, medianFiltering=p.median_filtering, useInitialFlow=False)

    def calc(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """See FlowEstimator.calc."""
        _check_pair(frame0, frame1)
        return self._impl.calc(frame0, frame1, None)

    def resolved_params(self) -> dict[str, object]:
        """See FlowEstimator.resolved_params."""
        i = self._impl
        return {"tau": i.getTau(), "lambda": i.getLambda(), "theta": i.getTheta(), "nscales": i.getScalesNumber(),
                "warps": i.getWarpingsNumber(), "epsilon": i.getEpsilon(), "inner_iterations": i.getInnerIterations(),
                "outer_iterations": i.getOuterIterations(), "scale_step": i.getScaleStep(), "gamma": i.getGamma(),
                "median_filtering": i.getMedianFiltering()}


_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class DISEstimator:
    """Dense Inverse Search via `cv2.DISOpticalFlow_create`."""

    def __init__(self, params: DISParams | None = None) -> None:
        p = params or DISParams()
        self._impl = cv2.DISOpticalFlow.create(_DIS_PRESETS[p.preset])
        setters = {"finest_scale": self._impl.setFinestScale, "patch_size": self._impl.setPatchSize,
                   "patch_stride": self._impl.setPatchStride,
                   "gradient_descent_iterations": self._impl.setGradientDescentIterations,
                   "variational_refinement_iterations": self._impl.setVariationalRefinementIterations,
                   "use_spatial_propagation": self._impl.setUseSpatialPropagation}
        for name, setter in setters.items():
            value = getattr(p, name)
            if value is not None:
                setter(value)

    def calc(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """See FlowEstimator.calc."""
        _check_pair(frame0, frame1)
        return self._impl.calc(frame0, frame1, None)  # type: ignore[call-overload]  # flow=None: OpenCV allocates it

    def resolved_params(self) -> dict[str, object]:
        """See FlowEstimator.resolved_params."""
        i = self._impl
        return {"finest_scale": i.getFinestScale(), "patch_size": i.getPatchSize(), "patch_stride": i.getPatchStride(),
                "gradient_descent_iterations": i.getGradientDescentIterations(),
                "variational_refinement_iterations": i.getVariationalRefinementIterations(),
                "variational_refinement_alpha": i.getVariationalRefinementAlpha(),
                "variational_refinement_delta": i.getVariationalRefinementDelta(),
                "variational_refinement_gamma": i.getVariationalRefinementGamma(),
                "use_mean_normalization": i.getUseMeanNormalization(),
                "use_spatial_propagation": i.getUseSpatialPropagation()}


class FarnebackEstimator:
    """Farnebäck polynomial-expansion flow via `cv2.calcOpticalFlowFarneback`."""

    def __init__(self, params: FarnebackParams | None = None) -> None:
        self._params = params or FarnebackParams()

    def calc(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """See FlowEstimator.calc."""
        _check_pair(frame0, frame1)
        p = self._params
        # flow=None: OpenCV allocates it; its stubs do not allow None
        return cv2.calcOpticalFlowFarneback(frame0, frame1, None, p.pyr_scale, p.levels,  # type: ignore[call-overload]
                                            p.winsize, p.iterations, p.poly_n, p.poly_sigma, 0)

    def resolved_params(self) -> dict[str, object]:
        """See FlowEstimator.resolved_params."""
        return self._params.model_dump()


def create_estimator(algorithm: FlowAlgorithm | str,
                     params: TVL1Params | DISParams | FarnebackParams | None = None, *, device: str = "auto",
                     batch_size: int = 16, compile: bool = True) -> FlowEstimator:
    """Build the estimator for `algorithm` with `params` (its defaults when None).

    `device`, `batch_size` (frame pairs computed together) and `compile` (torch.compile the
    iterations) apply to `tvl1-torch` only.
    """
    algorithm = FlowAlgorithm(algorithm)
    expected = {FlowAlgorithm.tvl1: TVL1Params, FlowAlgorithm.tvl1_torch: TVL1Params, FlowAlgorithm.dis: DISParams,
                FlowAlgorithm.farneback: FarnebackParams}[algorithm]
    if params is not None and not isinstance(params, expected):
        raise TypeError(f"{algorithm.value} needs {expected.__name__}, got {type(params).__name__}")
    if algorithm is FlowAlgorithm.tvl1:
        return TVL1Estimator(params)
    if algorithm is FlowAlgorithm.tvl1_torch:
        from im2flow_core.tvl1_torch import TorchTVL1Estimator  # torch is imported only when asked for
        return TorchTVL1Estimator(params, device=device, batch_size=batch_size,
                                  compile=compile)
    if algorithm is FlowAlgorithm.dis:
        return DISEstimator(params)
    return FarnebackEstimator(params)


def implementation_name(algorithm: FlowAlgorithm | str) -> str:
    """Name of the code that computes `algorithm`; part of a store's fingerprint."""
    return {FlowAlgorithm.tvl1: "opencv.optflow.DualTVL1OpticalFlow",
            FlowAlgorithm.tvl1_torch: "im2flow_core.tvl1_torch (PyTorch)", FlowAlgorithm.dis: "opencv.DISOpticalFlow",
            FlowAlgorithm.farneback: "opencv.calcOpticalFlowFarneback"}[FlowAlgorithm(algorithm)]
