"""ZipStore compatibility matrix: which libraries can write and read Zarr data in one .zip file."""

__version__ = "0.1.0"
