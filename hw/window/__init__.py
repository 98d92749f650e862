"""Line buffer and sliding-window generator: the input tile in raster order in, the chunks of
every output pixel's (ky, kx, group) window out (see generator.py)."""

from .generator import WindowGenerator, WindowPass, window_chunk_layout, window_cmd_layout
from .line_buffer import LineBuffer

__all__ = ["LineBuffer", "WindowGenerator", "WindowPass", "window_chunk_layout",
           "window_cmd_layout"]
