"""The science of im2flow: video decoding, optical flow, motion encoding, visualisation.

Pure functions and small classes over numpy/OpenCV. Nothing here knows about Prefect, Dask,
Zarr, MLflow or the work-directory layout.
"""
