"""One plotting style for every stage: matplotlib without a display, PNGs written atomically."""

from dlsys.plots.style import new_figure, save_figure, titled, image_grid

__all__ = ["new_figure", "save_figure", "titled", "image_grid"]
